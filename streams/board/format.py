"""How the board writes numbers: percentages, money, durations, plain counts."""

from __future__ import annotations

from collections.abc import Callable

NO_DATA = "&ndash;"


def fmt(value: float | None, unit: str) -> str:
    """A headline value; absent values (a ratio without data) show as a dash."""
    if value is None:
        return NO_DATA
    return formatter(unit)(value)


def formatter(unit: str) -> Callable[[float], str]:
    """The function writing values of ``unit``: ratio, money, s, score or count."""
    return {
        "ratio": lambda v: f"{v * 100:.1f}%",
        "money": _money,
        "s": duration,
        "score": lambda v: f"{v:.1f}",
    }.get(unit, _count)


def _count(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == round(value) else f"{value:.1f}"


def _money(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 100_000:
        return f"{sign}${value / 1000:,.0f}k"
    return f"{sign}${value:,.0f}"


def duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
