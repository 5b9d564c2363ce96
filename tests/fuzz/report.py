"""The JSON report: counts and rates per class, and each distinct failure with a reproducer.

Failures are grouped by signature (classify.py); each group keeps its count, the first
case ids (to rerun with `--case`), the smallest case seen and, once minimised, the
reproducer: the exact spec text and arguments, a bash line, and a compact rendering with
long runs written as «'1+'×998».
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fuzz.cases import Case, compact, shell
from tests.fuzz.classify import CLASSES, FAILURES

KEEP_IDS = 12


class Tally:
    """Records as they come: class counts and failure groups with their smallest case."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.groups: dict[str, dict[str, Any]] = {}
        self.smallest: dict[str, Case] = {}
        self.total = 0
        self.cost: Counter[str] = Counter()  # worker seconds by source and command

    def add(self, rec: dict[str, Any], case: Case) -> None:
        self.total += 1
        self.counts[rec["kind"]] += 1
        self.cost[f"{_source(case)} {case.args[0]}"] += rec.get("wall", 0.0)
        if rec["kind"] not in FAILURES:
            return
        group = self.groups.setdefault(rec["signature"], {
            "class": rec["kind"], "signature": rec["signature"], "count": 0, "cases": [], "origins": Counter(),
            "where": rec["where"], "exception": rec["exception"], "message": rec["message"], "detail": rec["detail"],
        })
        group["count"] += 1
        group["origins"][case.origin.split(" ")[0]] += 1
        if len(group["cases"]) < KEEP_IDS:
            group["cases"].append(rec["id"])
        if rec["signature"] not in self.smallest or case.size() < self.smallest[rec["signature"]].size():
            self.smallest[rec["signature"]] = case

    def failures(self) -> int:
        return sum(self.counts[k] for k in FAILURES)


def _source(case: Case) -> str:
    first = case.origin.split(" ")[0]
    return first.split(":")[0] if first else "?"


def reproducer(case: Case) -> dict[str, Any]:
    return {"args": case.args, "spec": case.spec, "via": case.via, "shell": _short_shell(case),
            "spec_compact": compact(case.spec) if case.spec is not None else None, "origin": case.origin}


def _short_shell(case: Case) -> str:
    line = shell(case)
    return line if len(line) <= 2000 else compact(line, 2000)


def build(tally: Tally, settings: dict[str, Any], elapsed: float) -> dict[str, Any]:
    classes = {k: {"count": tally.counts[k], "rate": round(tally.counts[k] / max(1, tally.total), 5)}
               for k in CLASSES}
    failures = sorted(tally.groups.values(), key=lambda g: (FAILURES.index(g["class"]), -g["count"]))
    for group in failures:
        group["origins"] = dict(group["origins"])
        group.setdefault("reproducer", reproducer(tally.smallest[group["signature"]]))
    return {"settings": settings, "inputs": tally.total, "elapsed_s": round(elapsed, 1),
            "inputs_per_s": round(tally.total / max(elapsed, 1e-9), 1), "classes": classes,
            "failing_inputs": tally.failures(), "distinct_failures": len(failures),
            "worker_seconds": {k: round(v, 1) for k, v in tally.cost.most_common()}, "failures": failures}


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several batch reports as one: counts summed, failure groups joined by signature."""
    total = sum(r["inputs"] for r in reports)
    counts = Counter({k: sum(r["classes"][k]["count"] for r in reports) for k in CLASSES})
    groups: dict[str, dict[str, Any]] = {}
    for r in reports:
        seed = r["settings"].get("seed")
        for g in r["failures"]:
            g = {**g, "cases": [f"{seed}:{c}" for c in g["cases"]] if "seeds" not in g else g["cases"]}
            _join(groups, g)
    failures = sorted(groups.values(), key=lambda g: (FAILURES.index(g["class"]), -g["count"]))
    elapsed = sum(r["elapsed_s"] for r in reports)
    return {"settings": [r["settings"] for r in reports], "inputs": total, "elapsed_s": round(elapsed, 1),
            "inputs_per_s": round(total / max(elapsed, 1e-9), 1),
            "classes": {k: {"count": counts[k], "rate": round(counts[k] / max(1, total), 5)} for k in CLASSES},
            "failing_inputs": sum(counts[k] for k in FAILURES), "distinct_failures": len(failures),
            "failures": failures}


def _join(groups: dict[str, dict[str, Any]], g: dict[str, Any]) -> None:
    old = groups.get(g["signature"])
    if old is None:
        groups[g["signature"]] = {**g, "seeds": True}
        return
    old["count"] += g["count"]
    old["cases"] = (old["cases"] + g["cases"])[:KEEP_IDS]
    for k, v in g.get("origins", {}).items():
        old["origins"][k] = old["origins"].get(k, 0) + v
    if _size(g) < _size(old):
        old["reproducer"], old["minimize"] = g["reproducer"], g.get("minimize")


def _size(group: dict[str, Any]) -> int:
    rep = group["reproducer"]
    return len(rep.get("spec") or "") + sum(len(a) for a in rep["args"])


def write(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal: rates per class, then each distinct failure."""
    lines = [f"{report['inputs']} inputs in {report['elapsed_s']} s ({report['inputs_per_s']}/s): "
             + ", ".join(f"{k} {v['count']}" for k, v in report["classes"].items() if v["count"]),
             f"{report['distinct_failures']} distinct failures:"]
    for g in report["failures"]:
        rep = g["reproducer"]
        lines.append(f"- [{g['class']}] ×{g['count']} {g['signature']}")
        lines.append(f"    {compact(rep['shell'], 300)}")
    return "\n".join(lines)
