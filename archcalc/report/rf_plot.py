"""The receptive field of one layer, drawn: a terminal bar chart (rich) and an SVG/PNG plot.

The bars are Luo et al. 2016's "effective receptive field" for uniform weights: how many
paths lead from each input position to the layer's unit. SVG is written by hand (no
dependency); matplotlib, where installed, draws both SVG and PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from archcalc.errors import UsageError
from archcalc.graph import LayerGraph
from archcalc.passes.receptive_field import RF, Profile, axis_names, coordinate
from archcalc.report.numbers import large, percent

MAX_ROWS = 40
BAR_WIDTH = 40
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float | Fraction, top: float | Fraction, width: int = BAR_WIDTH) -> str:
    eighths = round(8 * width * value / top) if top else 0
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def bins(p: Profile, rows: int = MAX_ROWS) -> list[tuple[int, int, int]]:
    """(first, last input coordinate, paths) per row; every position its own row if it fits."""
    step = math.ceil(p.size / rows)
    return [
        (p.start + k, p.start + min(k + step, p.size) - 1, sum(p.counts[k : k + step]))
        for k in range(0, p.size, step)
    ]


def _axes_to_draw(profiles: Sequence[Profile]) -> list[tuple[str, Profile]]:
    """One chart per axis, or one for all where every axis has the same profile."""
    names = axis_names(len(profiles))
    if all(p == profiles[0] for p in profiles):
        return [("=".join(n.upper() for n in names), profiles[0])]
    return [(n.upper(), p) for n, p in zip(names, profiles, strict=True)]


def rf_summary(graph: LayerGraph, node_id: int, rf: RF) -> Text:
    n = graph.node(node_id)
    text = Text()
    text.append(f"{graph.name}: layer {node_id} {n.text}", style="bold")
    text.append(f"  (output {'×'.join(map(str, n.shape))})\n")
    for a, name in enumerate(axis_names(rf.rank)):
        centers = ", ".join(f"{c:g}" for c in rf.axis_centers()[a])
        jump = coordinate(rf.jump[a])
        text.append(f"  {name}: RF {rf.size[a]}, jump {jump}, start {rf.start[a]}, center {centers}\n")
        period = rf.period(a)
        if period > 1:
            units = "; ".join(f"{u}: {w[0]}…{w[1]}" if w else f"{u}: none" for u, w in
                              ((u, rf.window(a, u)) for u in range(period)))
            moved = coordinate(rf.jump[a] * period)
            text.append(f"     units differ; the pattern repeats every {period} units, {moved} pixels on: {units}\n")
    text.append("  aligned: " + ("yes" if rf.aligned else f"no — {rf.why}"))
    return text


def profile_table(title: str, p: Profile) -> Table:
    rows = bins(p)
    binned = rows[0][0] != rows[0][1]
    # bars show paths per position, so a shorter last group is not drawn short
    # exact: a deep network's counts are integers far beyond a float's range
    top = max(Fraction(paths, last - first + 1) for first, last, paths in rows)
    total = sum(p.counts)
    lo, hi = p.central()
    caption = (f"RF {p.size} px from {p.start}; paths: mean at {float(p.mean()):g}, sd {p.sd():.1f} px; "
               f"95% of the paths come from {hi - lo + 1} px ({lo}..{hi})")
    table = Table(title=f"paths to the unit, axis {title}" + (" (positions grouped)" if binned else ""),
                  caption=caption, header_style="bold", title_justify="left", caption_justify="left")
    table.add_column("input x" if not binned else "input x..", justify="right", no_wrap=True)
    table.add_column("paths", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for first, last, paths in rows:
        where = str(first) if first == last else f"{first}..{last}"
        per_position = Fraction(paths, last - first + 1)
        table.add_row(where, large(paths), percent(paths, total, 1),
                      Text(bar(per_position, top), style="cyan"))
    return table


def rf_renderable(graph: LayerGraph, node_id: int, rf: RF, profiles: Sequence[Profile]) -> Group:
    return Group(rf_summary(graph, node_id, rf),
                 *(profile_table(title, p) for title, p in _axes_to_draw(profiles)))


# -- files ------------------------------------------------------------------------------


def save_plot(path: str, title: str, profiles: Sequence[Profile]) -> None:
    """Write an SVG or PNG bar chart of the path counts, one panel per axis."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".svg", ".png"):
        raise UsageError(f"cannot write '{path}': the plot is written as .svg or .png")
    try:
        import matplotlib  # noqa: F401  (optional: only for nicer plots and PNG)
    except ImportError:
        if suffix == ".png":
            raise UsageError("a PNG plot needs matplotlib (pip install 'archcalc[plot]'); "
                             "an .svg needs nothing: use -o plot.svg") from None
        try:
            Path(path).write_text(svg(title, profiles), encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write '{path}': {e.strerror}") from None
        return
    _matplotlib_plot(path, title, profiles)


def _matplotlib_plot(path: str, title: str, profiles: Sequence[Profile]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _axes_to_draw(profiles)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), squeeze=False)
    for ax, (name, p) in zip(axes[:, 0], panels, strict=True):
        total = sum(p.counts)
        ax.bar(range(p.start, p.start + p.size), [c / total for c in p.counts], width=1.0, color="#3b75af")
        ax.set_title(f"axis {name}: RF {p.size} px", fontsize=10)
        ax.set_xlabel("input coordinate of unit 0's field")
        ax.set_ylabel("share of paths")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def svg(title: str, profiles: Sequence[Profile], width: int = 720, panel: int = 200) -> str:
    """A dependency-free SVG: one bar chart per axis, bars scaled to the largest count."""
    panels = _axes_to_draw(profiles)
    margin, top_pad = 50, 40
    height = top_pad + len(panels) * (panel + 50)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{_escape(title)}</text>',
    ]
    for i, (name, p) in enumerate(panels):
        y0 = top_pad + i * (panel + 50)
        parts += _svg_panel(name, p, margin, y0, width - 2 * margin, panel)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_panel(name: str, p: Profile, x0: int, y0: int, w: int, h: int) -> list[str]:
    top = max(p.counts)
    step = w / p.size
    base = y0 + h
    out = [
        f'<text x="{x0}" y="{y0 + 12}">axis {_escape(name)}: RF {p.size} px, paths per input position '
        f'(max {_escape(large(top))})</text>',
        f'<line x1="{x0}" y1="{base}" x2="{x0 + w}" y2="{base}" stroke="black"/>',
    ]
    for k, c in enumerate(p.counts):
        bh = (h - 20) * c / top
        out.append(f'<rect x="{x0 + k * step:.2f}" y="{base - bh:.2f}" width="{max(step, 0.5):.2f}" '
                   f'height="{bh:.2f}" fill="#3b75af"><title>x={p.start + k}: {c} paths</title></rect>')
    for k in (0, p.size - 1):
        out.append(f'<text x="{x0 + (k + 0.5) * step:.2f}" y="{base + 16}" text-anchor="middle">'
                   f'{p.start + k}</text>')
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def profile_dicts(profiles: Sequence[Profile]) -> list[dict[str, Any]]:
    return [{"axis": name, "start": p.start, "counts": list(p.counts)}
            for name, p in zip(axis_names(len(profiles)), profiles, strict=True)]
