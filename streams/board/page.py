"""The board's HTML: one self-contained page, no script, nothing fetched from elsewhere.

Plan and window are links (state in the URL query), so a wall screen can be
pointed at ``/?plan=team&window=7d`` and left there; the page reloads itself.
Every dynamic string is HTML-escaped.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aggregators import catalogue as m
from aggregators.accounts import SCAN
from aggregators.families.billing import MOVEMENT_KINDS
from aggregators.series import Point, Steps
from schemas import REASONS
from streams.board.charts import Line, Stack, bar_chart, line_chart, share_bar
from streams.board.data import (
    MOVEMENT_STEP_HOURS,
    SPARSE_STEP_HOURS,
    STEP_HOURS,
    BoardData,
    quantile_of,
    value_of,
)
from streams.board.format import NO_DATA, duration, fmt, formatter
from streams.board.params import VIEWS
from streams.board.style import STYLE

REFRESH_SECONDS = {"24h": 10, "7d": 30, "30d": 60}
PARTIAL = "; a chart's last point is the current, partial step"
WINDOWED = "W"
"""A headline's window label meaning "the window the page shows"."""


@dataclass(frozen=True)
class Headline:
    """One number on a panel: a metric's sample, and how to show it."""

    title: str
    metric: str
    labels: Mapping[str, str]
    unit: str = "count"


def _w(**labels: str) -> dict[str, str]:
    return {**labels, "window": WINDOWED}


SUPPORT = (
    Headline("Tickets opened", m.TICKETS_OPENED.name, _w()),
    Headline("Open now", m.TICKETS_OPEN.name, {}),
    Headline("First contact resolution", m.FCR_RATIO.name, _w(), "ratio"),
    Headline("Resolved", m.TICKETS_RESOLVED.name, _w()),
)
RESPONSE = (
    Headline("First response, median", f"p50:{m.FIRST_RESPONSE_SECONDS.name}", {}, "s"),
    Headline("First response, p90", f"p90:{m.FIRST_RESPONSE_SECONDS.name}", {}, "s"),
    Headline("Resolution, median", f"p50:{m.RESOLUTION_SECONDS.name}", {}, "s"),
    Headline("Resolution, p90", f"p90:{m.RESOLUTION_SECONDS.name}", {}, "s"),
)
VOICE = (
    Headline("NPS", m.NPS.name, _w(), "score"),
    Headline("CSAT", m.CSAT_RATIO.name, _w(), "ratio"),
    Headline("CES (1-7)", m.CES_AVG.name, _w(), "score"),
    Headline("NPS answers", m.SURVEY_RESPONSES.name, _w(kind="nps")),
)
USAGE = (
    Headline("Active users", m.ACTIVE_USERS.name, _w()),
    Headline("Active accounts", m.ACTIVE_ACCOUNTS.name, _w()),
    Headline("Sessions", m.SESSIONS.name, _w()),
    Headline("Paying accounts active", m.PRODUCT_USAGE_RATIO.name, _w(), "ratio"),
)
REVENUE = (
    Headline("MRR", m.MRR.name, {}, "money"),
    Headline("Paying accounts", m.PAYING_ACCOUNTS.name, {}),
    Headline("ARPA", m.ARPA.name, {}, "money"),
    Headline("Churned accounts", m.CHURNED_ACCOUNTS.name, _w()),
)
RETENTION = (
    Headline("Net revenue retention", m.NRR_RATIO.name, _w(), "ratio"),
    Headline("Gross revenue retention", m.GRR_RATIO.name, _w(), "ratio"),
    Headline("Quick ratio", m.QUICK_RATIO.name, _w(), "score"),
    Headline("Account churn", m.CHURN_RATIO.name, _w(), "ratio"),
)
MOVEMENT_STYLE = {
    "new": ("New", 1),
    "expansion": ("Expansion", 1),
    "reactivation": ("Reactivation", 1),
    "contraction": ("Contraction", -1),
    "churned": ("Churned", -1),
}
assert set(MOVEMENT_STYLE) == set(MOVEMENT_KINDS)


def render(
    data: BoardData,
    charts: Mapping[int, Steps],
    pipeline: Mapping[str, float],
    letters: Mapping[str, float],
) -> str:
    """The whole page for the view in ``data``; ``charts``: hours per step -> the steps."""
    window = data.view.window
    common = _Charts(data, charts.get(STEP_HOURS[window]), STEP_HOURS[window])
    sparse = _Charts(data, charts.get(SPARSE_STEP_HOURS[window]), SPARSE_STEP_HOURS[window])
    moves = _Charts(data, charts.get(MOVEMENT_STEP_HOURS[window]), MOVEMENT_STEP_HOURS[window])
    body = "".join(
        (
            _panel("Support", data, SUPPORT, _tickets_chart(common)),
            _panel("Response times", data, RESPONSE, _response_chart(sparse)),
            _panel("Voice of the customer", data, VOICE, _nps_chart(sparse)),
            _panel("Product usage", data, USAGE, _sessions_chart(common)),
            _panel("Revenue", data, REVENUE, _mrr_chart(common)),
            _panel("MRR movements", data, RETENTION, _movements_chart(moves)),
            _health_html(data),
            _risk_html(data),
            _letters_html(letters, pipeline),
            _pipeline_html(data, pipeline),
        )
    )
    return document(data, f'<main class="grid">{body}</main>', REFRESH_SECONDS[window])


@dataclass(frozen=True)
class _Charts:
    """What a chart needs: the view, its steps and their size."""

    data: BoardData
    steps: Steps | None
    hours: int

    @property
    def span(self) -> int:
        return self.data.view.hours

    @property
    def per(self) -> str:
        return "hour" if self.hours == 1 else ("day" if self.hours == 24 else f"{self.hours} h")

    @property
    def window(self) -> str:
        return self.data.view.window


def document(data: BoardData, main: str, refresh: int, heading: str | None = None) -> str:
    """The page around ``main``: the board's picker, or ``heading`` on other pages."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(data.t))
    who = "the whole base" if data.view.plan == "all" else f"plan {data.view.plan}"
    who = heading or f"{who}, last {data.view.window}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{refresh}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,"><title>cspulse</title>'
        f"<style>{STYLE}</style></head><body>"
        f'<header><h1><a href="/">cspulse</a></h1>{"" if heading else _picker(data)}'
        f'<p class="sub">{html.escape(who)}; read at {stamp}; '
        f"reloads every {refresh} s{'' if heading else PARTIAL}. "
        'Raw numbers: <a href="/metrics">/metrics</a></p></header>'
        f"{main}</body></html>"
    )


def _picker(data: BoardData) -> str:
    """Links choosing the plan and the window; the current ones marked."""
    view = data.view
    plans = "".join(_choice(view.href(plan=p), p, p == view.plan) for p in data.plans)
    windows = "".join(_choice(view.href(window=w), w, w == view.window) for w in VIEWS)
    return (
        f'<nav aria-label="plan"><span>Plan</span>{plans}</nav>'
        f'<nav aria-label="window"><span>Window</span>{windows}</nav>'
    )


def _choice(href: str, label: str, current: bool) -> str:
    mark = ' class="on" aria-current="page"' if current else ""
    return f'<a href="{html.escape(href)}"{mark}>{html.escape(label)}</a>'


def _panel(title: str, data: BoardData, headlines: Sequence[Headline], chart: str) -> str:
    nums = "".join(_number(h, data) for h in headlines)
    return (
        f'<section class="panel" data-panel="{html.escape(title)}">'
        f'<h2>{html.escape(title)}</h2><div class="nums">{nums}</div>{chart}</section>'
    )


def _number(h: Headline, data: BoardData) -> str:
    """One headline; ``empty`` marks a number without data (a ratio with no denominator)."""
    windowed = h.labels.get("window") == WINDOWED or h.metric.startswith(("p50:", "p90:"))
    labels = {k: (data.window if v == WINDOWED else v) for k, v in h.labels.items()}
    value = value_of(data, h.metric, labels)
    title = f"{h.title} ({data.window})" if windowed else h.title
    css = "num" if value is not None else "num empty"
    return f'<div class="{css}"><b>{fmt(value, h.unit)}</b><span>{html.escape(title)}</span></div>'


def _tickets_chart(c: _Charts) -> str:
    if c.steps is None:
        return ""
    lines = [
        Line("opened", "s1", c.steps.pick(m.TICKETS_OPENED.name, {})),
        Line("resolved", "s2", c.steps.pick(m.TICKETS_RESOLVED.name, {})),
    ]
    title = f"Tickets opened and resolved per {c.per}, last {c.window}"
    return _line_figure(c, title, lines, "count")


def _line_figure(c: _Charts, title: str, lines: list[Line], unit: str) -> str:
    """A figure of line charts over the page's steps, values formatted as ``unit``."""
    return _figure(title, line_chart(title, lines, formatter(unit), c.span), lines)


def _response_chart(c: _Charts) -> str:
    if c.steps is None:
        return ""
    name = f"{m.FIRST_RESPONSE_SECONDS.name}_bucket"
    answered = c.steps.pick(f"{m.FIRST_RESPONSE_SECONDS.name}_gcount", {})
    lines = [
        Line("median", "s1", at_least(_step_quantiles(c.steps, name, 0.5), answered)),
        Line("p90", "s2", at_least(_step_quantiles(c.steps, name, 0.9), answered)),
    ]
    title = f"First response time per {c.per}, median and p90{FEW}"
    svg = line_chart(title, lines, duration, c.span, durations=True)
    return _figure(title, svg, lines)


MIN_COUNT = 3
FEW = f"; a point needs {MIN_COUNT} answers"


def at_least(points: list[Point], counts: list[Point], minimum: int = MIN_COUNT) -> list[Point]:
    """``points`` with a gap where the step's count is below ``minimum``: an NPS or a p90
    of one answer would swing the chart from end to end and mean nothing."""
    return [
        (t, v if (n or 0) >= minimum else None)
        for (t, v), (_t, n) in zip(points, counts, strict=True)
    ]


def _step_quantiles(steps: Steps, bucket_name: str, q: float) -> list[Point]:
    out: list[Point] = []
    for start, samples in zip(steps.starts, steps.samples, strict=True):
        buckets = sorted(
            (float(dict(s.labels)["le"]), s.value) for s in samples if s.name == bucket_name
        )
        out.append((start, quantile_of(buckets, q)))
    return out


def _nps_chart(c: _Charts) -> str:
    if c.steps is None:
        return ""
    answers = c.steps.pick(m.SURVEY_RESPONSES.name, {"kind": "nps"})
    lines = [Line("NPS", "s1", at_least(c.steps.pick(m.NPS.name, {}), answers))]
    title = f"NPS per {c.per}, last {c.window}{FEW}"
    return _line_figure(c, title, lines, "score")


def _sessions_chart(c: _Charts) -> str:
    title = f"Sessions started per {c.per}, last {c.window}"
    return _metric_figure(c, title, "sessions", m.SESSIONS.name, "count")


def _mrr_chart(c: _Charts) -> str:
    title = f"MRR at the end of each {c.per}, last {c.window}"
    return _metric_figure(c, title, "MRR", m.MRR.name, "money")


def _metric_figure(c: _Charts, title: str, label: str, metric: str, unit: str) -> str:
    """One metric's value per step as one line (nothing when the page has no steps)."""
    if c.steps is None:
        return ""
    return _line_figure(c, title, [Line(label, "s1", c.steps.pick(metric, {}))], unit)


def _movements_chart(c: _Charts) -> str:
    if c.steps is None:
        return ""
    stacks = [
        Stack(label, f"mv-{kind}", sign, c.steps.pick(m.MRR_MOVEMENT.name, {"kind": kind}))
        for kind, (label, sign) in MOVEMENT_STYLE.items()
    ]
    title = f"MRR movements per {c.per}, last {c.window}"
    return _figure(title, bar_chart(title, stacks, formatter("money"), c.span), stacks)


def _figure(title: str, svg: str, series: Sequence[Line | Stack]) -> str:
    legend = "".join(
        f'<span class="key"><i class="{s.css}"></i>{html.escape(s.name)}</span>' for s in series
    )
    return f"<figure>{svg}<figcaption>{html.escape(title)}{legend}</figcaption></figure>"


def _health_html(data: BoardData) -> str:
    nums = "".join(
        f'<div class="num"><b>{data.bands.get(band, 0):,}</b><span>{label}</span></div>'
        for band, label in BANDS
    )
    avg = fmt(data.health_avg, "score")
    return (
        '<section class="panel" data-panel="Customer health"><h2>Customer health</h2>'
        f'<div class="nums">{nums}<div class="num"><b>{avg}</b><span>Mean score</span></div>'
        f'</div>{_bands_bar(data)}<p class="cap">Whole base: accounts with an event in the '
        "last 30 days. Healthy from 70, at risk below 40.</p></section>"
    )


BANDS = (("healthy", "Healthy"), ("neutral", "Neutral"), ("at_risk", "At risk"))


def _bands_bar(data: BoardData) -> str:
    parts = [(label, f"band-{band}", float(data.bands.get(band, 0))) for band, label in BANDS]
    legend = "".join(
        f'<span class="key"><i class="band-{band}"></i>{label}</span>' for band, label in BANDS
    )
    svg = share_bar("Accounts per health band", parts)
    return f"<figure>{svg}<figcaption>Accounts per band{legend}</figcaption></figure>"


SHORT_REASONS = {
    "not_json": "not JSON",
    "not_object": "JSON, but not an object",
    "missing_field": "a required field is missing",
    "bad_type": "a field has a wrong type or value",
    "bad_specversion": "specversion is not 1.0",
    "unknown_type": "an event type the contract lacks",
    "wrong_topic": "on another family's topic",
    "bad_time": "time is not RFC 3339 with offset",
    "future_time": "time is in the future",
    "score_range": "a survey score off its scale",
    "currency": "not the reporting currency",
    "processing_error": "the worker failed to apply it",
}
"""A few words per dead-letter reason; the full meaning (schemas.REASONS) shows on hover."""


def _letters_html(letters: Mapping[str, float], pipeline: Mapping[str, float]) -> str:
    """Dead letters by reason, each with what the reason means (in full on hover)."""
    total = pipeline.get("Dead-lettered", 0.0)
    seen = total + pipeline.get("Events applied", 0.0)
    share = f"{total / seen * 100:.1f}% of {seen:,.0f} events read" if seen else "no events yet"
    rows = "".join(_letter_row(reason, count) for reason, count in letters.items() if count)
    table = (
        f"<table><tr><th>reason</th><th class=r>events</th><th>meaning</th></tr>{rows}</table>"
        if rows
        else '<p class="cap">No event was dead-lettered.</p>'
    )
    return (
        '<section class="panel" data-panel="Dead letters"><h2>Dead letters</h2>'
        f'<p class="lead"><b>{total:,.0f}</b> {share}</p>{table}'
        '<p class="cap">Counted by this process since it started; list and replay them with '
        "<code>cspulse deadletter list</code>.</p></section>"
    )


def _letter_row(reason: str, count: float) -> str:
    meaning = REASONS.get(reason, "the worker could not apply it")
    short = SHORT_REASONS.get(reason, meaning)
    return (
        f'<tr title="{html.escape(meaning)}"><td>{html.escape(reason)}</td>'
        f"<td class=r>{count:,.0f}</td><td>{html.escape(short)}</td></tr>"
    )


def _pipeline_html(data: BoardData, pipeline: Mapping[str, float]) -> str:
    redis = '<b class="ok">up</b>' if data.redis_ok else '<b class="bad">down</b>'
    rows = "".join(
        f"<tr><td>{html.escape(topic)}</td><td>{_age(ts)} ago</td></tr>"
        for topic, ts in sorted(data.latest.items())
    )
    nums = "".join(
        f'<div class="num"><b>{value:,.0f}</b><span>{html.escape(label)}</span></div>'
        for label, value in pipeline.items()
        if label != "Dead-lettered"
    )
    return (
        '<section class="panel" data-panel="Pipeline"><h2>Pipeline</h2>'
        f'<div class="nums"><div class="num">{redis}<span>Redis</span></div>{nums}</div>'
        f"<table><tr><th>topic</th><th>newest event applied</th></tr>{rows}</table></section>"
    )


def _age(ts: float) -> str:
    return duration(max(0.0, time.time() - ts))


def _risk_html(data: BoardData) -> str:
    """At-risk accounts only; when there are none, the lowest scores, said so."""
    risky = [r for r in data.risky if r["band"] == "at_risk"]
    if risky:
        rows, caption = risky, f"{len(risky)} shown, lowest score first."
    else:
        rows = data.risky[:5]
        caption = "No account is at risk (score below 40). The lowest scores:"
    body = "".join(_risk_row(r, data) for r in rows)
    return (
        '<section class="panel span2" data-panel="At-risk accounts"><h2>At-risk accounts</h2>'
        f'<p class="cap">{caption} {_risk_scope(data)}; as JSON with every component: '
        '<a href="/accounts/at-risk?limit=50">/accounts/at-risk</a>.</p>'
        "<table><tr><th>account</th><th class=r>score</th><th>band</th>"
        f"<th>what pulls it down</th></tr>{body}</table></section>"
    )


def _risk_scope(data: BoardData) -> str:
    if data.view.plan == "all":
        return "Whole base"
    return f"Plan {html.escape(data.view.plan)}, among the {SCAN} lowest scores of the base"


def _risk_row(row: Mapping[str, Any], data: BoardData) -> str:
    account = html.escape(row["account"])
    href = html.escape(data.view.href("/accounts/" + _path_part(row["account"])))
    reasons = html.escape("; ".join(row["reasons"])) or NO_DATA
    return (
        f'<tr id="account-{account}"><td><a href="{href}">{account}</a></td>'
        f"<td class=r>{row['score']:.0f}</td><td>{html.escape(row['band'])}</td>"
        f"<td>{reasons}</td></tr>"
    )


def _path_part(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
