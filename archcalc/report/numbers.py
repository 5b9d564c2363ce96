"""How reports write numbers: one function per style, exact integers never routed through float.

Tables and diagrams round for the eye (`138.36 M`, `527.8 MiB`); JSON and CSV keep the exact
integers. Rounding is done in `Decimal`, so a count of any size formats without overflow.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

_METRIC = (("G", 10**9), ("M", 10**6), ("K", 10**3))
_BINARY = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def count(value: int) -> str:
    """1,792 — or '–' for zero, so empty cells read as empty."""
    return f"{value:,}" if value else "–"


def _rounded(value: int | float, size: int, digits: int) -> str:
    """value / size to `digits` decimals with thousands separators, exactly (any size)."""
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    with localcontext() as ctx:
        ctx.prec = max(28, len(str(abs(int(value)))) + digits + 2)
        return f"{(exact / size).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_EVEN):,f}"


def metric(value: int | float, digits: int = 2, space: str = " ") -> str:
    """138357544 → '138.36 M' (digits=1, space='' → '138.4M'); below 1,000 as it is."""
    for unit, size in _METRIC:
        if abs(value) >= size:
            return f"{_rounded(value, size, digits)}{space}{unit}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def binary_bytes(value: int, unit: str | None = None) -> str:
    """553430176 → '527.8 MiB' (binary units, as memory is allocated); `unit` fixes the unit."""
    for name, size in _BINARY:
        if name == unit or (unit is None and value >= size):
            return f"{_rounded(value, size, 1)} {name}"
    return f"{value} B"


def large(value: int) -> str:
    """Exact with separators while it fits a table cell; 3 significant digits beyond 10^15
    (path counts grow fast)."""
    return f"{value:,}" if value < 10**15 else f"{Decimal(value):.3g}"


def exact_bytes(value: int) -> str:
    """'553,430,176 B (527.8 MiB)': exact, and in binary units where that reads better."""
    return f"{value:,} B ({binary_bytes(value)})" if value >= 1024 else f"{value:,} B"


def percent(part: int | float, whole: int | float, digits: int = 2) -> str:
    """'89.36%'; empty where the whole is zero."""
    if not whole:
        return ""
    return f"{Decimal(part) * 100 / Decimal(whole):.{digits}f}%"


def plain(value: float) -> int | float:
    """2.0 → 2 for JSON: a whole float is written as an integer."""
    return int(value) if float(value).is_integer() else value
