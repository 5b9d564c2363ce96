"""One spec at several values of one parameter, side by side (`archcalc sweep gpt2 --over seq=128,1024,8192`):
how parameters, MACs and memory scale, with the MACs that grow with T² (attention's Q·Kᵀ and A·V)
apart from the rest, the causal-aware figure, the MACs by kind of layer, the KV cache and the
activation peak. It only reads the analyses (one per value); every figure is its pass's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table

from archcalc.passes.analysis import Analysis
from archcalc.records import record
from archcalc.report.numbers import binary_bytes, percent

KIND_ORDER = ("attention", "mlp", "fc", "conv", "embedding", "norm", "matmul", "recurrent")


@record
class Line:
    """One row: its label, the exact value per analysis, and how a table cell writes it."""

    key: str
    label: str
    values: tuple[int, ...]
    share_of: tuple[int, ...] | None = None  # show a percentage of these (the MACs)
    unit: str = "count"  # count or bytes


def _kinds(analyses: Sequence[Analysis]) -> list[str]:
    seen = {k.kind for a in analyses for k in a.kinds if k.macs or k.params}
    return sorted(seen, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else len(KIND_ORDER), k))


def lines(analyses: Sequence[Analysis]) -> list[Line]:
    """Every row of the sweep, in order; per sample except the bytes (which are for the batch)."""
    def each(f: Callable[[Analysis], int]) -> tuple[int, ...]:
        return tuple(f(a) for a in analyses)

    macs = each(lambda a: a.totals.macs)
    quadratic = each(lambda a: a.attention.total_quadratic_macs)
    out = [
        Line("params", "parameters", each(lambda a: a.totals.params)),
        Line("macs", "MACs", macs),
        Line("linear_macs", "  growing with T (everything but Q·Kᵀ, A·V)",
             tuple(m - q for m, q in zip(macs, quadratic)), macs),
        Line("quadratic_macs", "  growing with T² (Q·Kᵀ and A·V)", quadratic, macs),
    ]
    causal = each(lambda a: a.attention.total_causal_macs)
    if causal != macs:
        out.append(Line("causal_macs", "causal-aware MACs (lower triangle only)", causal, macs))
    out.append(Line("flops", "FLOPs (2 × MACs, FlopCounterMode's)", each(lambda a: a.totals.flops)))
    for kind in _kinds(analyses):
        by = each(lambda a, kind=kind: sum(k.macs for k in a.kinds if k.kind == kind))  # type: ignore[misc]
        if any(by):
            out.append(Line(f"macs.{kind}", f"  MACs in {kind}", by, macs))
    for kind in _kinds(analyses):
        by = each(lambda a, kind=kind: sum(k.params for k in a.kinds if k.kind == kind))  # type: ignore[misc]
        if any(by):
            out.append(Line(f"params.{kind}", f"  parameters in {kind}", by, each(lambda a: a.totals.params)))
    kv = each(lambda a: a.attention.total_kv_cache_bytes)
    if any(kv):
        out.append(Line("kv_cache_bytes", "KV cache", kv, unit="bytes"))
    out += [
        Line("activation_peak_bytes", "inference activation peak", each(lambda a: a.memory.inference_peak_bytes),
             unit="bytes"),
        Line("param_bytes", "parameters", each(lambda a: a.memory.param_bytes), unit="bytes"),
    ]
    return out


def _cell(line: Line, i: int) -> str:
    value = line.values[i]
    if line.unit == "bytes":
        return f"{value:,} ({binary_bytes(value)})" if value >= 1024 else f"{value:,} B"
    text = f"{value:,}"
    if line.share_of is not None and line.share_of[i]:
        text += f" ({percent(value, line.share_of[i], 1)})"
    return text


def sweep_table(name: str, over: str, values: Sequence[Any], analyses: Sequence[Analysis]) -> Table:
    a = analyses[0]
    options = a.memory.options
    table = Table(title=f"{name}: {over} = {', '.join(map(str, values))}  (per sample; bytes for batch "
                        f"{options.batch}, {options.dtype})", header_style="bold", title_justify="left")
    table.add_column("figure", no_wrap=True)
    for v in values:
        table.add_column(f"{over}={v}", justify="right", no_wrap=True)
    bytes_started = False
    for line in lines(analyses):
        if line.unit == "bytes" and not bytes_started:
            table.add_section()
            bytes_started = True
        table.add_row(line.label if line.unit == "count" else f"{line.label} (bytes)",
                      *(_cell(line, i) for i in range(len(values))))
    return table


def sweep_dict(name: str, over: str, values: Sequence[Any], analyses: Sequence[Analysis]) -> dict[str, Any]:
    """The sweep as JSON: one record per value, integers exact; `per` says what each number is for."""
    options = analyses[0].memory.options
    columns = []
    for i, v in enumerate(values):
        figures: dict[str, Any] = {"value": v}
        for line in lines(analyses):
            group, _, kind = line.key.partition(".")
            if kind:
                figures.setdefault(f"{group}_by_kind", {})[kind] = line.values[i]
            else:
                figures[line.key] = line.values[i]
        columns.append(figures)
    return {"spec": name, "over": over, "values": list(values), "batch": options.batch, "dtype": options.dtype,
            "per": "counts per sample; *_bytes for the batch at the dtype", "columns": columns}


def sweep_markdown(name: str, over: str, values: Sequence[Any], analyses: Sequence[Analysis]) -> str:
    options = analyses[0].memory.options
    head = f"## {name}: {over} = {', '.join(map(str, values))}\n\nPer sample; bytes for batch {options.batch}, " \
           f"{options.dtype}.\n\n"
    rows = ["| figure | " + " | ".join(f"{over}={v}" for v in values) + " |",
            "|---|" + "---:|" * len(values)]
    for line in lines(analyses):
        label = line.label.strip() if line.unit == "count" else f"{line.label} (bytes)"
        indent = "&nbsp;&nbsp;" if line.label.startswith("  ") else ""
        rows.append(f"| {indent}{label} | " + " | ".join(_cell(line, i) for i in range(len(values))) + " |")
    return head + "\n".join(rows) + "\n"


__all__ = ["Line", "lines", "sweep_dict", "sweep_markdown", "sweep_table"]
