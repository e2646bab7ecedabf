"""Server-side SVG charts: axes, dates and values, a ``<title>`` on every mark for hover.

No script: a wall screen shows what the server drew. Each chart is an
``<svg role="img">`` whose first child is its ``<title>``, so screen readers
and the tests find what it shows.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aggregators.series import Point

Format = Callable[[float], str]
WIDTH, HEIGHT = 440, 170
LEFT, RIGHT, TOP, BOTTOM = 58, 8, 10, 24


@dataclass(frozen=True)
class Line:
    """One series of a line chart: its name (legend, hover), CSS class and points."""

    name: str
    css: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Stack:
    """One kind of a stacked bar chart; ``sign`` -1 draws it below the axis."""

    name: str
    css: str
    sign: int
    points: Sequence[Point]


TIME_STEPS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
"""Axis steps for durations: whole minutes and hours rather than 5,000 s."""


def nice_ticks(low: float, high: float, count: int = 4, steps: Sequence[float] = ()) -> list[float]:
    """Round axis values covering [low, high]: steps of 1, 2 or 5 times a power of ten,
    or the first of ``steps`` that is large enough."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    fits = [c for c in steps if c >= raw] or [m * power for m in (1, 2, 5, 10) if m * power >= raw]
    step = min(fits)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def stamp(ts: float, span_hours: int) -> str:
    """An axis or hover label: the hour for a day's chart, the date beyond."""
    fmt = "%H:%M" if span_hours <= 24 else "%b %d"
    return time.strftime(fmt, time.gmtime(ts))


def _hover(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


class _Frame:
    """The plot area: maps (index, value) to pixels, draws grid and axis labels."""

    def __init__(self, starts: Sequence[float], ticks: list[float], span_hours: int) -> None:
        self.starts, self.ticks, self.span = starts, ticks, span_hours
        self.low, self.high = ticks[0], ticks[-1]
        self.inner_w, self.inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(self, i: float) -> float:
        return LEFT + self.inner_w * (i + 0.5) / max(1, len(self.starts))

    def y(self, value: float) -> float:
        return TOP + self.inner_h * (self.high - value) / (self.high - self.low)

    def grid(self, fmt: Format) -> str:
        parts = []
        for tick in self.ticks:
            y = self.y(tick)
            parts.append(
                f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{html.escape(fmt(tick))}</text>"
            )
        every = max(1, math.ceil(len(self.starts) / 6))
        last = len(self.starts) - 1
        for i in range(last, -1, -every):
            x, anchor = (WIDTH - RIGHT, "end") if i == last else (self.x(i), "middle")
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                f"{stamp(self.starts[i], self.span)}</text>"
            )
        return "".join(parts)


def _svg(title: str, body: str, css: str = "chart") -> str:
    return (
        f'<svg class="{css}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'preserveAspectRatio="xMidYMid meet"><title>{html.escape(title)}</title>{body}</svg>'
    )


def line_chart(
    title: str, lines: Sequence[Line], fmt: Format, span_hours: int, durations: bool = False
) -> str:
    """Lines over shared time steps; a gap (no value) breaks a line; every point has a
    hover title with its time and value."""
    values = [v for line in lines for _t, v in line.points if v is not None]
    if not values or not lines:
        return _svg(f"{title}: no data yet", _empty(), "chart empty")
    starts = [t for t, _v in lines[0].points]
    ticks = nice_ticks(min(0.0, min(values)), max(values), steps=TIME_STEPS if durations else ())
    frame = _Frame(starts, ticks, span_hours)
    marks = [frame.grid(fmt)]
    for line in lines:
        marks.append(_polyline(frame, line, fmt))
    return _svg(title, "".join(marks))


def _polyline(frame: _Frame, line: Line, fmt: Format) -> str:
    runs: list[list[str]] = [[]]
    dots = []
    for i, (ts, value) in enumerate(line.points):
        if value is None:
            runs.append([])
            continue
        x, y = frame.x(i), frame.y(value)
        runs[-1].append(f"{x:.1f},{y:.1f}")
        label = f"{line.name}, {_hover(ts)}: {fmt(value)}"
        dots.append(
            f'<circle class="{line.css}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{html.escape(label)}</title></circle>"
        )
    paths = "".join(
        f'<polyline class="{line.css}" points="{" ".join(run)}"/>' for run in runs if len(run) > 1
    )
    return paths + "".join(dots)


def bar_chart(title: str, stacks: Sequence[Stack], fmt: Format, span_hours: int) -> str:
    """Stacked bars per step: positive kinds above the axis, negative below (ChartMogul's
    MRR movements); each segment has a hover title."""
    if not stacks or not any(v for s in stacks for _t, v in s.points):
        return _svg(f"{title}: no movements yet", _empty(), "chart empty")
    starts = [t for t, _v in stacks[0].points]
    up = [sum((s.points[i][1] or 0.0) for s in stacks if s.sign > 0) for i in range(len(starts))]
    down = [sum((s.points[i][1] or 0.0) for s in stacks if s.sign < 0) for i in range(len(starts))]
    frame = _Frame(starts, nice_ticks(-max(down), max(up)), span_hours)
    marks = [frame.grid(fmt)]
    width = frame.inner_w / max(1, len(starts)) * 0.7
    for i, ts in enumerate(starts):
        above = below = 0.0
        for s in stacks:
            value = s.points[i][1] or 0.0
            if not value:
                continue
            base = above if s.sign > 0 else below
            top, bottom = (base + value, base) if s.sign > 0 else (-base, -base - value)
            if s.sign > 0:
                above += value
            else:
                below += value
            y = frame.y(top)
            label = f"{s.name}, {_hover(ts)}: {fmt(s.sign * value)}"
            marks.append(
                f'<rect class="{s.css}" x="{frame.x(i) - width / 2:.1f}" y="{y:.1f}" '
                f'width="{width:.1f}" height="{max(0.5, frame.y(bottom) - y):.1f}">'
                f"<title>{html.escape(label)}</title></rect>"
            )
    zero = frame.y(0.0)
    marks.append(
        f'<line class="zero" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}"/>'
    )
    return _svg(title, "".join(marks))


def _empty() -> str:
    return (
        f'<text class="axis" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
        "no data yet</text>"
    )


def share_bar(title: str, parts: Sequence[tuple[str, str, float]]) -> str:
    """One horizontal bar split into (name, CSS class, count) shares, each with a hover title."""
    total = sum(n for _name, _css, n in parts)
    if total <= 0:
        return _svg(f"{title}: no data yet", "", "bands empty")
    x, marks = 0.0, []
    for name, css, n in parts:
        w = WIDTH * n / total
        label = f"{name}: {n:,.0f} ({n / total * 100:.0f}%)"
        marks.append(
            f'<rect class="{css}" x="{x:.1f}" y="0" width="{w:.1f}" height="18">'
            f"<title>{html.escape(label)}</title></rect>"
        )
        x += w
    body = "".join(marks)
    return (
        f'<svg class="bands" viewBox="0 0 {WIDTH} 18" role="img" preserveAspectRatio="none">'
        f"<title>{html.escape(title)}</title>{body}</svg>"
    )
