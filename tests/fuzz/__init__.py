"""A grammar-aware fuzzer for archcalc's command line.

It checks the principle every command promises: bad input gets one clear, positioned
error and exit status 2 — never a traceback, a hang or exhausted memory. It uses only
the public CLI (`archcalc.cli:cli`, through click's `CliRunner`) and the standard
library, so it keeps working while archcalc's internals change.

    python -m tests.fuzz --seed 1 --count 2000 --out report.json

Modules: inputs.py draws case N of a seed (corpus.py: the zoo specs; mutate.py:
mutations; grammar.py: generated specs; options.py: command lines), worker.py runs
cases in a capped child process, classify.py names what happened, runner.py feeds the
workers and watches them, minimize.py shrinks each distinct failure, report.py writes
the JSON. `run_batch` is the whole pipeline, used by the CLI and tests/test_fuzz.py.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tests.fuzz.cases import Case
from tests.fuzz.options import DEFAULT_COMMANDS


def run_batch(seed: int, count: int, commands: tuple[str, ...] = DEFAULT_COMMANDS, timeout: float = 2.0,
              memory_mb: int = 512, jobs: int = 2, start: int = 0, minimize: bool = True,
              min_probes: int = 300, min_seconds: float = 60.0, min_total: float = 900.0, profile: str = "full",
              extra: list[Case] | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run cases start … start+count−1 of `seed` (and the `extra` ones, such as
    issue_cases.cases()); minimise each distinct failure; return the report."""
    from tests.fuzz import report
    from tests.fuzz.inputs import make_case
    from tests.fuzz.runner import Pool

    settings = {"seed": seed, "start": start, "count": count, "commands": list(commands), "timeout": timeout,
                "memory_mb": memory_mb, "jobs": jobs, "profile": profile}
    cases = {i: make_case(seed, i, commands, profile) for i in range(start, start + count)}
    cases.update({c.id: c for c in extra or ()})
    tally = report.Tally()
    began = time.monotonic()

    def on_record(rec: dict[str, Any]) -> None:
        tally.add(rec, cases[rec["id"]])
        if progress and tally.total % 250 == 0:
            progress(f"{tally.total}/{len(cases)} inputs, {tally.failures()} failing, {time.monotonic() - began:.0f} s")

    worker_settings = {"timeout": timeout, "memory_mb": memory_mb, "commands": list(commands)}
    with Pool(jobs, worker_settings) as pool:
        pool.map(cases.values(), on_record)
        elapsed = time.monotonic() - began
        result = report.build(tally, settings, elapsed)
        if minimize:
            _minimize_all(pool, result, tally.smallest, min_probes, min_seconds, min_total, progress)
        result["worker_starts"] = sum(w.starts for w in pool.workers)
    result["minimize_s"] = round(time.monotonic() - began - elapsed, 1)
    return result


def reminimize(result: dict[str, Any], timeout: float = 2.0, memory_mb: int = 512, jobs: int = 2,
               min_probes: int = 400, min_seconds: float = 120.0, min_total: float = 1800.0,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Shrink a (merged) report's failures again, with a bigger budget: each group's cases are
    drawn anew from their ids ('seed:index'), which is what makes a case reproducible."""
    from tests.fuzz.runner import Pool

    settings = result["settings"] if isinstance(result["settings"], list) else [result["settings"]]
    by_seed = {str(s["seed"]): s for s in settings}
    smallest = {g["signature"]: min((_redraw(ref, by_seed, settings[0]) for ref in g["cases"]), key=Case.size)
                for g in result["failures"]}
    commands = sorted({c for s in settings for c in s["commands"]} | ({"verify"} if _has_issue(result) else set()))
    with Pool(jobs, {"timeout": timeout, "memory_mb": memory_mb, "commands": commands}) as pool:
        _minimize_all(pool, result, smallest, min_probes, min_seconds, min_total, progress)
    return result


def _redraw(ref: Any, by_seed: dict[str, dict[str, Any]], default: dict[str, Any]) -> Case:
    from tests.fuzz.inputs import make_case
    from tests.fuzz.issue_cases import cases as issue_cases

    seed, _, index = str(ref).rpartition(":")
    settings = by_seed.get(seed, default)
    if int(index) < 0:
        return next(c for c in issue_cases() if c.id == int(index))
    return make_case(int(seed or settings["seed"]), int(index), tuple(settings["commands"]),
                     settings.get("profile", "full"))


def _has_issue(result: dict[str, Any]) -> bool:
    return any(int(str(ref).rpartition(":")[2]) < 0 for g in result["failures"] for ref in g["cases"])


def _minimize_all(pool: Any, result: dict[str, Any], smallest: dict[str, Case], probes: int, seconds: float,
                  total: float, progress: Callable[[str], None] | None) -> None:
    """Each group's smallest case, shrunk; the groups shared out over the workers."""
    import threading

    from tests.fuzz import report
    from tests.fuzz.minimize import minimize

    groups = list(result["failures"])
    deadline = time.monotonic() + total
    lock = threading.Lock()

    def work(worker: int) -> None:
        while True:
            with lock:
                if not groups:
                    return
                group = groups.pop(0)
                # the worker-seconds left, shared out over the groups still to do
                share = (deadline - time.monotonic()) * len(pool.workers) / (len(groups) + 1)
            case = smallest[group["signature"]]
            if share < 1.0:
                group["minimize"] = {"skipped": "the total minimisation budget was spent"}
                continue

            def probe(c: Case, w: int = worker) -> str:
                # no second try with a zoo spec's time baseline: a probe costs one limit at most
                return str(pool.probe(replace(c, seed_spec=None), w)["signature"])

            small, stats = minimize(case, group["signature"], probe, probes, min(seconds, share))
            final = pool.probe(small, worker)
            group["reproducer"], group["minimize"] = report.reproducer(small), stats
            if final["signature"] == group["signature"]:
                group.update(where=final["where"], exception=final["exception"], message=final["message"])
            if progress:
                progress(f"minimised {group['signature'][:90]}: {stats['from_size']} → {stats['to_size']} chars")

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(len(pool.workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


__all__ = ["log", "reminimize", "run_batch"]
