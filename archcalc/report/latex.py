"""LaTeX: the layer table for a paper, as a booktabs `table` (`report --format latex`).

`--only weighted` keeps the conv and FC rows a paper lists; `--columns` picks the figures;
`--depth` collapses blocks. Text is escaped for LaTeX (×, →, − and the like as math), numbers
are exact with thousands separators. The preamble needs `\\usepackage{booktabs}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from archcalc.passes.analysis import Analysis
from archcalc.report.columns import Column, select
from archcalc.report.rows import only as filter_rows
from archcalc.report.rows import rows
from archcalc.tensor import format_shape
from archcalc.version import __version__

_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%",
            "&": r"\&", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}
_UNICODE = {"×": r"$\times$", "→": r"$\to$", "−": r"$-$", "·": r"$\cdot$", "≈": r"$\approx$", "…": r"\ldots{}",
            "–": "--", "—": "---", "⌈": r"$\lceil$", "⌉": r"$\rceil$", "⌊": r"$\lfloor$", "⌋": r"$\rfloor$"}
_PATTERN = re.compile("|".join(re.escape(k) for k in [*_SPECIAL, *_UNICODE]))


def escape(text: str) -> str:
    """Text as LaTeX prints it: specials escaped, ×/→/− as math."""
    return _PATTERN.sub(lambda m: _SPECIAL.get(m.group(0)) or _UNICODE[m.group(0)], text)


def to_latex(analysis: Analysis, depth: int | None = None, columns: Sequence[Column] | None = None,
             only: str | None = None) -> str:
    g, t = analysis.graph, analysis.totals
    cols = list(columns) if columns is not None else select(None)
    spec = "rl" + "".join("r" if c.justify == "right" else "l" for c in cols)
    width = len(cols) + 2
    lines = [
        f"% {g.name}: written by archcalc {__version__} (archcalc report {g.name} --format latex)",
        r"% needs \usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + escape(f"{g.name}: input {format_shape(g.input.shape)}, {t.params:,} parameters, "
                               f"{t.macs:,} multiply-accumulates (FLOPs = 2 × MACs)") + "}",
        r"\label{tab:" + re.sub(r"[^A-Za-z0-9]+", "-", g.name) + "}",
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join([r"\#", "Layer", *(escape(c.title[:1].upper() + c.title[1:]) for c in cols)]) + r" \\",
        r"\midrule",
    ]
    for r in filter_rows(analysis, rows(analysis, depth), only):
        indent = r"\quad " * r.level
        if r.heading:
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{{indent}\textit{{{escape(r.label)}}}}} \\")
            continue
        cells = [escape(r.index), indent + escape(r.label), *(escape(c.cell(analysis, r.ids)) for c in cols)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [
        r"\midrule",
        " & ".join(["", "Total", *(escape(c.footer(analysis)) for c in cols)]) + r" \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
