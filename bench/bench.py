#!/usr/bin/env python3
"""How fast archcalc's static path is, how it grows, and how it compares with its peers.

The targets live here, as ratios and per-layer figures measured in one run, not in timed
tests (a shared machine's absolute times vary too much for a test to assert them):

1. every built-in spec in-process (parse, expand, shapes, passes), and from a cold shell
   (`archcalc report NAME --format json`: interpreter start, imports, analysis, JSON);
2. generated graphs of 10,000 and 100,000 layers — a chain, residual blocks and a dense DAG
   (every node reads the two before it) — with `--format json`, per phase: µs per layer
   (target ≈ 20), the growth from 10,000 to 100,000 (target ≤ 1.2×) and the peak memory per
   node (target ≤ 2 KB, traced with tracemalloc);
3. the cold start of `archcalc report resnet152 --format json` as a ratio to
   `python -c 'import torch'` (target ≤ 0.10) when torch is installed;
4. the table report's time per row at 500, 1,998 and 10,000 layers (target ≤ 50 µs);
4b. the totals of specs written as repeats (`report --totals`, archcalc/repeats.py): a
   1,000,000-layer chain and GPT-2 with 1,000 blocks, by CPU time and nodes built (target: well
   under a second);
5. with `--peers PYTHON` (an interpreter with torchvision and any of torchinfo, fvcore, ptflops,
   thop installed), the same models timed by each peer in that interpreter, side by side.

It also checks that `import archcalc.cli` and a report never import torch.

Every time is **CPU time** (user + system), not wall time: the machine is shared, and another
job's load stretches wall time but not the CPU a process uses. In-process phases are timed
with `time.process_time()`, cold shells with the children's `getrusage`. The cold shells run
with bytecode caching on (as an installed archcalc runs), even where the environment sets
PYTHONDONTWRITEBYTECODE, after one run that writes the caches.

    .venv/bin/python bench/bench.py                 # everything, a few minutes on 2 cores
    .venv/bin/python bench/bench.py --quick         # fewer runs, graphs up to 10,000 layers
    .venv/bin/python bench/bench.py --peers /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_MODELS = ("vgg16", "resnet50", "resnet152", "densenet201")


def median_seconds(fn: Callable[[], Any], runs: int) -> float:
    """Median CPU seconds of `fn` in this process."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CACHED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # .pyc files on


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f}"


def cold(command: list[str], runs: int) -> float:
    """Median CPU seconds (user + system) of a command in a fresh process, bytecode cached."""
    def once() -> float:
        start = _children_cpu()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                       env=CACHED)
        return _children_cpu() - start

    once()  # writes the bytecode caches
    return statistics.median(once() for _ in range(runs))


def archcalc_exe() -> str:
    return str(Path(sys.executable).parent / "archcalc")


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


def zoo_table(runs: int, shell_runs: int) -> None:
    from archcalc import load_text
    from archcalc.passes.analysis import analyze
    from archcalc.zoo import names, read

    # in-process: every figure (what a JSON report computes); table: what the default table report
    # computes (the conventions and the training step are computed on first read, and it reads neither)
    print(f"\n{'spec':<28}{'nodes':>7}  {'in-process ms':>13}  {'µs/node':>8}  {'table ms':>9}  "
          f"{'cold shell ms':>13}")
    total_in, total_table, total_cold = 0.0, 0.0, 0.0
    for name in names():
        source = read(name)
        nodes = len(load_text(source.text, source.filename))
        seconds = median_seconds(lambda s=source: every_figure(analyze(load_text(s.text, s.filename))), runs)
        table = median_seconds(lambda s=source: analyze(load_text(s.text, s.filename)), runs)
        shell = cold([archcalc_exe(), "report", name, "--format", "json"], shell_runs)
        total_in, total_table, total_cold = total_in + seconds, total_table + table, total_cold + shell
        print(f"{name:<28}{nodes:>7}  {ms(seconds):>13}  {seconds / nodes * 1e6:8.1f}  {ms(table):>9}  "
              f"{ms(shell):>13}")
    print(f"{'all ' + str(len(names())):<28}{'':>7}  {ms(total_in):>13}  {'':>8}  {ms(total_table):>9}  "
          f"{ms(total_cold):>13}")


# -- generated graphs -----------------------------------------------------------------------------


def chain_text(layers: int) -> str:
    """conv3-16 and relu alternating, one pair per line, on a 16×8×8 input."""
    return "name chain\ninput 16x8x8\n" + "conv3-16, relu\n" * (layers // 2)


def residual_text(layers: int) -> str:
    """Residual blocks of conv3-16, relu, conv3-16 (+ the add): 4 layers per block."""
    block = "block unit:\n    residual:\n        conv3-16, relu, conv3-16\n    shortcut: identity\n"
    return "name residual\ninput 16x8x8\n" + block + "unit x1000\n" * (layers // 4000) + "unit\n" * (
        (layers % 4000) // 4)


def dense_text(layers: int) -> str:
    """A dense DAG: every node adds the two before it (fan-in 2 everywhere)."""
    lines = ["name dense", "input 16x8x8", "n0 = conv3-16", "n1 = relu"]
    lines += [f"n{i} = add(@n{i - 1}, @n{i - 2})" for i in range(2, layers)]
    return "\n".join(lines) + "\n"


GRAPHS = {"chain": chain_text, "residual": residual_text, "dense DAG": dense_text}


def phases(text: str, runs: int) -> tuple[dict[str, float], int, int]:
    """Median seconds per phase (parse, expand, shapes, passes, JSON), the node count and the
    peak traced memory of the whole pipeline."""
    from archcalc import lang
    from archcalc.passes.analysis import analyze
    from archcalc.passes.shapes import infer
    from archcalc.quiet_gc import paused
    from archcalc.report.formats import write_json

    with paused(), open(os.devnull, "w", encoding="utf-8") as sink:
        tree = lang.parse(text, "bench.arch")
        drafts = lang.expand(tree)
        graph = infer(drafts)
        analysis = analyze(graph)
        times = {
            "parse": median_seconds(lambda: lang.parse(text, "bench.arch"), runs),
            "expand": median_seconds(lambda: lang.expand(tree), runs),
            "shapes": median_seconds(lambda: infer(drafts), runs),
            "passes": median_seconds(lambda: every_figure(analyze(graph)), runs),
            # written a piece at a time, as `report --format json` writes it (`to_json` would time
            # building one string of the whole document: 110 MB at 100,000 layers, not the command's cost)
            "json": median_seconds(lambda: write_json(analysis, sink), runs),
        }
    return times, len(graph), peak_memory(text)


def every_figure(analysis: Any) -> Any:
    """The analysis with the figures it computes on first read (the conventions, the training
    step) computed too, as a JSON report reads them: the passes phase times every pass."""
    assert analysis.conventions is not None and analysis.training is not None
    return analysis


def peak_memory(text: str) -> int:
    """Bytes traced at the peak of parse → JSON written out (as `report --format json` writes it, a
    piece at a time, here to /dev/null), nothing kept from before."""
    from archcalc import lang
    from archcalc.passes.analysis import analyze
    from archcalc.passes.shapes import infer
    from archcalc.quiet_gc import paused
    from archcalc.report.formats import write_json

    with open(os.devnull, "w", encoding="utf-8") as sink:
        tracemalloc.start()
        with paused():
            write_json(analyze(infer(lang.expand(lang.parse(text, "bench.arch")))), sink)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def graph_table(sizes: list[int], runs: int) -> None:
    names = ("parse", "expand", "shapes", "passes", "json")
    head = "".join(f"{p + ' ms':>11}" for p in names)
    print(f"\n{'graph':<10}{'layers':>8}{head}{'total ms':>11}{'µs/layer':>10}{'bytes/node':>12}")
    for kind, make in GRAPHS.items():
        per_layer = []
        for size in sizes:
            times, nodes, peak = phases(make(size), runs if size < 100_000 else max(1, runs // 2))
            total = sum(times.values())
            per_layer.append(total / nodes)
            cells = "".join(f"{ms(times[p]):>11}" for p in names)
            print(f"{kind:<10}{nodes:>8}{cells}{ms(total):>11}{total / nodes * 1e6:10.1f}{peak / nodes:12,.0f}")
        if len(per_layer) > 1:
            print(f"{'':<10}{'growth':>8}  µs/layer at {sizes[-1]:,} / at {sizes[0]:,}: "
                  f"{per_layer[-1] / per_layer[0]:.2f}× (target ≤ 1.2×)")


# -- repeated blocks (archcalc/repeats.py, `report --totals`) -----------------------------------------

MILLION = ("name million\ninput 64x32x32\nblock cbr(c): conv3-{c}/p1, bn, relu\nblock stage: cbr(64) x1000\n"
           "block wide: relu x1000\nstage x333\nwide x1\n")  # 333 × 3,000 + 1,000 = 1,000,000 layers


def repeats_table(runs: int) -> None:
    """The totals of specs written as repeats, from their distinct blocks (`report --totals`): a
    1,000,000-layer chain (333 stages of 1,000 conv-BN-ReLUs, then 1,000 ReLUs), GPT-2 with
    1,000 blocks, and GPT-2's 1,000 blocks expanded for comparison."""
    import archcalc

    print(f"\n{'repeats (report --totals)':<34}{'layers':>11}{'analyses':>10}{'nodes built':>13}{'CPU ms':>10}")
    cases = [("1,000,000-layer chain as repeats", MILLION, None), ("gpt2, 1,000 blocks", "gpt2", {"depth": 1000})]
    archcalc.totals("input 3x8x8\nconv3-4\n")  # the imports, once
    for label, spec, params in cases:
        summary = archcalc.totals(spec, params=params)
        cpu = median_seconds(lambda spec=spec, params=params: archcalc.totals(spec, params=params), runs)
        print(f"{label:<34}{summary.layers - 1:>11,}{summary.analyses:>10}{summary.nodes_built:>13,}{ms(cpu):>10}")
    expanded = median_seconds(lambda: archcalc.analyze("gpt2", params={"depth": 1000}).to_dict(), max(1, runs // 2))
    print(f"{'gpt2, 1,000 blocks, expanded (JSON)':<34}{'8,005':>11}{1:>10}{'8,006':>13}{ms(expanded):>10}")


# -- cold start and the table ------------------------------------------------------------------------


def cold_start(runs: int) -> None:
    ours = cold([archcalc_exe(), "report", "resnet152", "--format", "json"], runs)
    line = f"\ncold `archcalc report resnet152 --format json`: {ms(ours).strip()} ms"
    try:
        torch = cold([sys.executable, "-c", "import torch"], runs)
    except subprocess.CalledProcessError:
        print(line + "; torch is not installed here, so no ratio")
        return
    print(f"{line}; `python -c 'import torch'`: {ms(torch).strip()} ms; ratio {ours / torch:.3f} "
          f"(target ≤ 0.10)")


def table_per_row(layers: int) -> None:
    """The table report as `report` prints it to a file, and its layer table alone (the summary and
    the totals by kind are a fixed cost whatever the size)."""
    import archcalc
    from archcalc.cli import show
    from archcalc.report.table import full_report, layer_table

    analysis = archcalc.analyze(chain_text(layers))
    rows = len(analysis.graph)

    def draw(part: Any) -> Callable[[], None]:  # as `report` prints it (show, not Console.print)
        return lambda: show(part(analysis), file=io.StringIO())

    whole, table = median_seconds(draw(full_report), 1), median_seconds(draw(layer_table), 1)
    print(f"\nthe table report of {rows:,} rows: {ms(whole).strip()} ms, {whole / rows * 1e6:.1f} µs/row; "
          f"its layer table {table / rows * 1e6:.1f} µs/row (target ≤ 50)")


# -- peers ------------------------------------------------------------------------------------------


def peer_table(python: str, runs: int) -> None:
    """Each peer's time on the same models in its own interpreter (bench/peers.py), beside
    archcalc's, cold and in-process."""
    out = subprocess.run([python, str(ROOT / "bench" / "peers.py"), *PEER_MODELS, "--runs", str(runs)],
                         capture_output=True, text=True, check=True)
    peers: dict[str, dict[str, dict[str, float]]] = json.loads(out.stdout)
    import archcalc

    ours_in = {m: median_seconds(lambda m=m: archcalc.analyze(m), runs) for m in PEER_MODELS}
    ours_cold = {m: cold([archcalc_exe(), "report", m, "--format", "json"], max(1, runs // 2))
                 for m in PEER_MODELS}
    print(f"\n{'tool':<22}" + "".join(f"{m + ' in-proc':>18}{m + ' cold':>16}" for m in PEER_MODELS))
    print(f"{'archcalc':<22}" + "".join(f"{ms(ours_in[m]):>18}{ms(ours_cold[m]):>16}" for m in PEER_MODELS))
    for tool, figures in peers.items():
        cells = "".join(f"{_cell(figures, m, 'in_process', ours_in[m]):>18}"
                        f"{_cell(figures, m, 'cold', ours_cold[m]):>16}" for m in PEER_MODELS)
        print(f"{tool:<22}{cells}")
    print("(ms; in brackets how many times archcalc's time)")


def _cell(figures: dict[str, dict[str, float]], model: str, key: str, ours: float) -> str:
    seconds = figures.get(model, {}).get(key)
    return "–" if seconds is None else f"{seconds * 1e3:.0f} ({seconds / ours:.0f}×)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs; graphs up to 10,000 layers")
    parser.add_argument("--peers", metavar="PYTHON", help="an interpreter with the peer tools and torchvision")
    args = parser.parse_args()
    runs, shell_runs = (3, 1) if args.quick else (5, 3)
    sizes = [10_000] if args.quick else [10_000, 100_000]

    print(f"archcalc benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, CPU time (user + "
          f"system): median of {runs} runs in-process, {shell_runs} from a cold shell")
    print(f"torch imported by `import archcalc.cli` + `archcalc report`: "
          f"{'no' if torch_free_report() else 'YES (a bug: the static path must not import torch)'}")
    zoo_table(runs, shell_runs)
    graph_table(sizes, runs)
    repeats_table(runs)
    cold_start(shell_runs)
    for layers in (500, 1_998) if args.quick else (500, 1_998, 10_000):  # below PLAIN_ROWS rich drew them before
        table_per_row(layers)
    if args.peers:
        peer_table(args.peers, shell_runs)


if __name__ == "__main__":
    main()
