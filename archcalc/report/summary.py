"""The report of `archcalc report SPEC --totals`: the totals, and with `--depth N` one row per block,
a run of identical blocks as one row with its count (archcalc/repeats.py carries both to a spec's
repeat counts without expanding them)."""

from __future__ import annotations

import re
from typing import Any

from archcalc.passes import figures
from archcalc.passes.analysis import Analysis
from archcalc.report.rows import rows

ROW_FIGURES = ("params", "buffers", "macs", "flops", "other_ops", "act_bytes", "kv_cache")
MAX_PERIOD = 8  # the longest run of rows (a block's heading and its rows) compressed as one
_NUMBERED = re.compile(r"#\d+")


def depth_rows(analysis: Analysis, depth: int) -> list[dict[str, Any]]:
    """The rows of `--depth N`, each with its figures; consecutive runs of alike rows (alike but for
    their ids and their instance numbers, `stage#3`) as one entry `{"repeat": n, "rows": [...]}`."""
    entries = []
    for r in rows(analysis, depth):
        if r.heading:
            entries.append({"heading": r.label, "level": r.level})
            continue
        entry: dict[str, Any] = {"level": r.level, "first": r.ids[0], "last": r.ids[-1], "type": r.type,
                                 "label": r.label.rsplit(" (", 1)[0] if r.type == "block" else r.label,
                                 "layers": len(r.ids), "shape": list(analysis.graph.node(r.ids[-1]).shape)}
        entry.update({key: figures.value(analysis, key, r.ids) for key in ROW_FIGURES})
        entries.append(entry)
    return _compressed(entries)


def _compressed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of the shortest period first, so that a stage's blocks become one entry before the
    stages, each a heading and that entry, become one (runs of runs)."""
    period = 1
    while period <= MAX_PERIOD:
        shorter = _runs(entries, period)
        if len(shorter) < len(entries):
            entries, period = shorter, 1
        else:
            period += 1
    return entries


def _alike(e: dict[str, Any]) -> Any:
    if "repeat" in e:
        return ("repeat", e["repeat"], tuple(_alike(r) for r in e["rows"]))
    return tuple((k, _NUMBERED.sub("#", v) if isinstance(v, str) else v) for k, v in e.items()
                 if k not in ("first", "last"))


def _runs(entries: list[dict[str, Any]], period: int) -> list[dict[str, Any]]:
    keys = [_alike(e) for e in entries]
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(entries):
        times = 1
        while keys[i + times * period:i + (times + 1) * period] == keys[i:i + period]:
            times += 1
        if times > 1:
            out.append({"repeat": times, "rows": entries[i:i + period]})
            i += times * period
        else:
            out.append(entries[i])
            i += 1
    return out


def to_text(doc: dict[str, Any]) -> str:
    """The summary as plain text: what it is, the totals, the rows."""
    t, s = doc["totals"], doc["summary"]
    m = t["memory"]
    lines = [f"{doc['name']}: input {'x'.join(map(str, doc['input']))} → output {'x'.join(map(str, doc['output']))}, "
             f"{s['expanded_layers'] - len(doc['inputs']):,} layers"]
    if s["repeats"]:
        lines.append("totals from the repeated blocks, without expanding: "
                     + "; ".join(f"line {r['line']}: {r['spec']} ×{r['count']:,}" for r in s["repeats"]))
    else:
        lines.append(f"totals of the expanded network ({s['fell_back']})")
    rows_ = doc.get("rows")
    if rows_ is not None:
        lines.append("")
        lines += _row_lines(rows_, "")
    lines += [
        "",
        f"params             {t['params']:,}  (trainable {t['trainable']:,}, non-trainable {t['non_trainable']:,})",
        f"buffers            {t['buffers']:,}",
        f"MACs               {t['macs']:,}",
        f"FLOPs              {t['flops']:,}",
        f"other ops          {sum(t['other_ops'].values()):,}",
        f"activation bytes   {m['activation_bytes']:,}  ({m['dtype']}, batch {m['batch']})",
        f"inference peak     {m['inference_peak_bytes']:,} bytes",
        f"training memory    {m['training']['total_bytes']:,} bytes  ({m['optimizer']})",
        f"training step      {doc['training']['flops']['step']:,} FLOPs",
    ]
    if t["kv_cache"]["elements_per_sample"]:
        lines.append(f"KV cache           {t['kv_cache']['elements_per_sample']:,} elements per sample")
    for w in doc["warnings"]:
        lines.append(f"warning (line {w['line']}, ×{w['count']:,}): {w['message']}")
    return "\n".join(lines) + "\n"


def _row_lines(entries: list[dict[str, Any]], indent: str) -> list[str]:
    out = []
    for e in entries:
        if "repeat" in e:
            out.append(f"{'':>14}{indent}× {e['repeat']:,}:")
            out += _row_lines(e["rows"], indent + "    ")
        elif "heading" in e:
            out.append(f"{'':>14}{indent}{'  ' * e['level']}▸ {e['heading']}")
        else:
            ids = f"{e['first']}" if e["first"] == e["last"] else f"{e['first']}–{e['last']}"
            label = f"{indent}{'  ' * e['level']}{e['label']}"
            out.append(f"{ids:>12}  {label:<40} {'x'.join(map(str, e['shape'])):<14} "
                       f"params {e['params']:>14,}  MACs {e['macs']:>18,}")
    return out


def _level(e: dict[str, Any]) -> int:
    first = e["rows"][0]
    return int(first["level"]) if "level" in first else 0
