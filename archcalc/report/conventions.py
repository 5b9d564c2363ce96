"""How counting conventions are shown: a network's figure under one, the registry, and where two
conventions differ (`archcalc explain-diff`). The figures are passes/conventions.py's; this only
formats them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archcalc.passes import conventions
from archcalc.passes.analysis import Analysis
from archcalc.passes.conventions import FLOPS, MACS, Counted, Diff

if TYPE_CHECKING:  # rich is imported by the table that draws it: JSON and Markdown never load it
    from rich.console import Group

_WORDS = {MACS: "MACs", FLOPS: "FLOPs"}


def vs_default(analysis: Analysis, counted: Counted | None = None) -> float | None:
    """`counted` against archcalc's own figure, in percent, in `counted`'s unit (None at 0)."""
    counted = counted or analysis.counted
    base = analysis.conventions[conventions.DEFAULT]
    return percent_vs(counted.total, base.in_unit(counted.unit))


def percent_vs(total: int, ours: int) -> float | None:
    """A tool's total against archcalc's in the same unit, in percent (None at 0)."""
    return 100.0 * (total - ours) / ours if ours else None


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.2f} %"


def title(counted: Counted) -> str:
    """The column title of a convention's figure: 'ptflops MACs'."""
    return f"{counted.name} {_WORDS[counted.unit]}"


def summary_lines(analysis: Analysis) -> list[str]:
    """What the chosen convention gives, against archcalc's figure, and what it cannot see."""
    if analysis.convention == conventions.DEFAULT:  # nothing to say, and nothing counted to say it
        return []
    c = analysis.counted
    pct = vs_default(analysis)
    base = analysis.conventions[conventions.DEFAULT].in_unit(c.unit)
    lines = [f"under {c.name} ({c.convention.tool}): {c.total:,} {_WORDS[c.unit]}"
             f" ({_signed(pct)} against FlopCounterMode's {base:,}); parameters as it reports them {c.params:,}"]
    lines += [f"  note: {text}" for text in c.convention.notes]
    lines += [f"  {cav.layer_type} ({len(cav.layers)} layer{'s' if len(cav.layers) > 1 else ''}): {cav.text}"
              for cav in c.caveats]
    return lines


def to_dict(analysis: Analysis) -> dict[str, Any]:
    """The chosen convention for the JSON document (`convention`), with every convention's total."""
    c = analysis.counted
    return {
        **_counted_dict(analysis, c),
        "all": {name: {"unit": x.unit, "total": x.total, "params": x.params,
                       "percent_vs_pytorch": vs_default(analysis, x)} for name, x in analysis.conventions.items()},
    }


def _counted_dict(analysis: Analysis, c: Counted) -> dict[str, Any]:
    return {
        "name": c.name, "tool": c.convention.tool, "unit": c.unit, "rule": c.convention.rule, "total": c.total,
        "params": c.params, "percent_vs_pytorch": vs_default(analysis, c), "notes": list(c.convention.notes),
        "caveats": [{"layer_type": x.layer_type, "text": x.text, "layers": list(x.layers)} for x in c.caveats],
    }


def registry_text(width: int = 100) -> str:
    """`archcalc conventions`: every convention, the tool figure it reproduces, and its rule."""
    import textwrap

    out = ["counting conventions (--convention NAME on report, compare, check; explain-diff --between A B)", ""]
    for c in conventions.CONVENTIONS.values():
        out.append(f"{c.name} ({c.unit}): {c.tool}")
        out += textwrap.wrap(c.rule, width, initial_indent="    ", subsequent_indent="    ")
        out += textwrap.wrap("note: " + " ".join(c.notes), width, initial_indent="    ",
                             subsequent_indent="    ") if c.notes else []
        out.append("")
    out.append("docs/conventions.md says what each counts op by op, with links to the tools' source lines.")
    return "\n".join(out) + "\n"


def registry_dicts() -> list[dict[str, Any]]:
    return [{"name": c.name, "unit": c.unit, "tool": c.tool, "rule": c.rule, "notes": list(c.notes)}
            for c in conventions.CONVENTIONS.values()]


# -- explain-diff --------------------------------------------------------------------------------


def headline(d: Diff) -> str:
    """'+4.46 %: bn 2·elements (+4.44 %), adaptive-avgpool input elements (+0.02 %)'."""
    total = d.total_b - d.total_a
    parts = [f"{r.layer_type} {r.rule_b} ({d.percent(r.diff):+.2f} %)" for r in d.rows[:6]]
    more = f", {len(d.rows) - 6} more" if len(d.rows) > 6 else ""
    return f"{d.percent(total):+.2f} %: " + (", ".join(parts) + more if parts else "no difference")


def diff_table(analysis: Analysis, d: Diff) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    unit = _WORDS[d.unit]
    table = Table(title=f"{analysis.graph.name}: {d.b.name} against {d.a.name} ({unit})", header_style="bold")
    for col, justify in (("layer type", "left"), ("layers", "right"), (d.a.name, "right"), (d.b.name, "right"),
                         ("difference", "right"), ("% of " + d.a.name, "right"), (f"{d.a.name} counts", "left"),
                         (f"{d.b.name} counts", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in d.rows:
        table.add_row(r.layer_type, str(r.layers), f"{r.a:,}", f"{r.b:,}", f"{r.diff:+,}",
                      f"{d.percent(r.diff):+.2f} %", r.rule_a, r.rule_b)
    table.add_row("total", "", f"{d.total_a:,}", f"{d.total_b:,}", f"{d.total_b - d.total_a:+,}",
                  f"{d.percent(d.total_b - d.total_a):+.2f} %", "", "", style="bold")
    text = Text(headline(d) + "\n", style="bold")
    if d.same:
        text.append("counted alike: " + ", ".join(f"{r.layer_type} ({r.layers})" for r in d.same) + "\n", style="dim")
    if d.unit == FLOPS and MACS in (d.a.unit, d.b.unit):
        text.append("a MAC-unit convention is doubled to compare with FLOPs\n", style="dim")
    for c in (d.a, d.b):
        for note in c.notes:
            text.append(f"{c.name}: {note}\n", style="yellow")
    return Group(table, text)


def diff_markdown(analysis: Analysis, d: Diff) -> str:
    heads = ["layer type", "layers", d.a.name, d.b.name, "difference", f"% of {d.a.name}", f"{d.a.name} counts",
             f"{d.b.name} counts"]
    lines = [f"## {analysis.graph.name}: {d.b.name} against {d.a.name} ({_WORDS[d.unit]})", "",
             f"**{headline(d)}**", "", "| " + " | ".join(heads) + " |", "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in d.rows:
        lines.append(f"| {r.layer_type} | {r.layers} | {r.a:,} | {r.b:,} | {r.diff:+,} | {d.percent(r.diff):+.2f} % | "
                     f"{r.rule_a} | {r.rule_b} |")
    lines.append(f"| **total** | | {d.total_a:,} | {d.total_b:,} | {d.total_b - d.total_a:+,} | "
                 f"{d.percent(d.total_b - d.total_a):+.2f} % | | |")
    lines.append("")
    if d.same:
        lines.append("Counted alike: " + ", ".join(f"{r.layer_type} ({r.layers})" for r in d.same) + ".")
    lines += [f"\n> {c.name}: {note}" for c in (d.a, d.b) for note in c.notes]
    return "\n".join(lines) + "\n"


def diff_dict(analysis: Analysis, d: Diff) -> dict[str, Any]:
    def row(r: Any) -> dict[str, Any]:
        return {"layer_type": r.layer_type, "layers": r.layers, d.a.name: r.a, d.b.name: r.b, "difference": r.diff,
                "percent": d.percent(r.diff), "rule": {d.a.name: r.rule_a, d.b.name: r.rule_b}}

    return {"name": analysis.graph.name, "between": [d.a.name, d.b.name], "unit": d.unit, "headline": headline(d),
            "totals": {d.a.name: d.total_a, d.b.name: d.total_b, "difference": d.total_b - d.total_a,
                       "percent": d.percent(d.total_b - d.total_a)},
            "rows": [row(r) for r in d.rows], "same": [row(r) for r in d.same],
            "conventions": {c.name: _counted_dict(analysis, c) for c in (d.a, d.b)}}
