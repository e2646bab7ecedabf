"""The live board at ``/`` and its JSON series endpoint ``/api/series``.

A newcomer without Grafana gets one self-contained HTML page: headline numbers
per event family, sparklines of the last 24 hours drawn as SVG on the server,
the at-risk accounts with what pulls them down, and pipeline health. No
script, no CDN: the page reloads itself every few seconds. Its numbers come
from the same Redis reads and formulas as ``/metrics``; a sparkline point is
the same formula applied to one hourly bucket (MRR: MRR now with later
movements undone).
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.registry import CollectorRegistry
from redis.exceptions import RedisError

from aggregators import catalogue as m
from aggregators.config import MetricConfig
from aggregators.health import HealthConfig
from aggregators.health_index import at_risk, band_counts
from aggregators.plans import ALL
from aggregators.reader import Reader
from aggregators.readout import compute_segment, split_by_plan
from aggregators.series import HOURS, bucket_series

REFRESH_SECONDS = 5
FIRST_RESPONSE = m.FIRST_RESPONSE_SECONDS.name
NO_DATA = "&ndash;"


@dataclass(frozen=True)
class Headline:
    """One number on a panel: a metric's sample, and how to show it."""

    title: str
    metric: str
    labels: Mapping[str, str]
    unit: str = "count"


@dataclass(frozen=True)
class Panel:
    title: str
    headlines: tuple[Headline, ...]
    spark: str
    spark_labels: Mapping[str, str]
    spark_title: str


PANELS: tuple[Panel, ...] = (
    Panel(
        "Support",
        (
            Headline("Tickets opened (1d)", m.TICKETS_OPENED.name, {"window": "1d"}),
            Headline("Open tickets", m.TICKETS_OPEN.name, {}),
            Headline("First contact resolution (1d)", m.FCR_RATIO.name, {"window": "1d"}, "ratio"),
            Headline(
                "First response, median (1d)", f"p50:{m.FIRST_RESPONSE_SECONDS.name}", {}, "s"
            ),
            Headline("First response, p90 (1d)", f"p90:{m.FIRST_RESPONSE_SECONDS.name}", {}, "s"),
        ),
        m.TICKETS_OPENED.name,
        {},
        "tickets opened per hour",
    ),
    Panel(
        "Voice of the customer",
        (
            Headline("NPS (7d)", m.NPS.name, {"window": "7d"}, "score"),
            Headline("CSAT (7d)", m.CSAT_RATIO.name, {"window": "7d"}, "ratio"),
            Headline("CES (7d)", m.CES_AVG.name, {"window": "7d"}, "score"),
            Headline("NPS answers (7d)", m.SURVEY_RESPONSES.name, {"kind": "nps", "window": "7d"}),
        ),
        m.SURVEY_RESPONSES.name,
        {"kind": "nps"},
        "NPS answers per hour",
    ),
    Panel(
        "Product usage",
        (
            Headline("Active users (1d)", m.ACTIVE_USERS.name, {"window": "1d"}),
            Headline("Active accounts (1d)", m.ACTIVE_ACCOUNTS.name, {"window": "1d"}),
            Headline("Sessions live now", m.SESSIONS_ACTIVE.name, {}),
            Headline("Stickiness (DAU/MAU)", m.STICKINESS_RATIO.name, {}, "ratio"),
        ),
        m.SESSIONS.name,
        {},
        "sessions started per hour",
    ),
    Panel(
        "Revenue",
        (
            Headline("MRR", m.MRR.name, {}, "money"),
            Headline("Paying accounts", m.PAYING_ACCOUNTS.name, {}),
            Headline("Net revenue retention (30d)", m.NRR_RATIO.name, {"window": "30d"}, "ratio"),
            Headline("Quick ratio (30d)", m.QUICK_RATIO.name, {"window": "30d"}, "score"),
            Headline("Churn (30d)", m.CHURN_RATIO.name, {"window": "30d"}, "ratio"),
        ),
        m.MRR.name,
        {},
        "MRR, hourly",
    ),
)


# ---------------------------------------------------------------------- page


@dataclass
class BoardData:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    latest: dict[str, float]
    t: float
    redis_ok: bool
    bands: dict[str, int]
    health_avg: float | None
    risky: list[dict[str, Any]]


def gather(reader: Reader, config: MetricConfig, health: HealthConfig) -> BoardData:
    """One read of Redis for the page: the same snapshot and formulas as ``/metrics``."""
    try:
        result = reader.read()
        snapshot = split_by_plan(result.snapshot)[ALL]
        samples = {
            (s.name, tuple(kv for kv in s.labels if kv[0] != "currency")): s.value
            for s in compute_segment(snapshot, config)
        }
        bands, avg = band_counts(reader.redis, health)
        risky = at_risk(reader.redis, health, 10, result.t)
        return BoardData(samples, result.latest, result.t, True, bands, avg, risky)
    except (RedisError, OSError):
        return BoardData({}, {}, time.time(), False, {}, None, [])


def value_of(data: BoardData, metric: str, labels: Mapping[str, str]) -> float | None:
    if metric.startswith(("p50:", "p90:")):
        return _quantile(data, float(metric[1:3]) / 100, metric[4:])
    return data.samples.get((metric, tuple(sorted(labels.items()))))


def _quantile(data: BoardData, q: float, histogram: str) -> float | None:
    """``histogram_quantile`` of the 1d gauge histogram: linear inside the bucket holding it."""
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in data.samples.items()
        if name == f"{histogram}_bucket" and dict(labels).get("window") == "1d"
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return NO_DATA
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "money":
        return f"${value:,.0f}"
    if unit == "s":
        return _duration(value)
    if unit == "score":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def sparkline(points: list[list[Any]], width: int = 280, height: int = 48) -> str:
    """An inline SVG polyline of the points; gaps (no value) break the line."""
    values = [p[1] for p in points if p[1] is not None]
    if not values:
        return '<svg class="spark empty" width="280" height="48" role="img"></svg>'
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(points) - 1)
    runs: list[list[str]] = [[]]
    for i, (_ts, v) in enumerate(points):
        if v is None:
            runs.append([])
            continue
        y = height - 4 - (v - low) / span * (height - 8)
        runs[-1].append(f"{i * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(run)}"/>' for run in runs if len(run) > 1
    ) + "".join(
        f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" r="1.5"/>'
        for run in runs
        if len(run) == 1
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="min {low:g}, max {high:g}">{lines}</svg>'
    )


STYLE = """
body{font:14px system-ui,sans-serif;margin:16px;background:#f6f7f9;color:#1d2330}
h1{font-size:20px;margin:0 0 4px}.sub{color:#667;margin:0 0 16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.panel{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px}
.panel h2{font-size:15px;margin:0 0 8px}
.nums{display:grid;grid-template-columns:1fr 1fr;gap:6px 12px}
.num b{display:block;font-size:20px}.num span{color:#667;font-size:12px}
.spark polyline{fill:none;stroke:#3470d8;stroke-width:1.5}.spark circle{fill:#3470d8}
.cap{color:#667;font-size:12px}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eef0f4;vertical-align:top}
.bad{color:#c0392b}.ok{color:#1e8449}.wide{grid-column:1/-1}
"""


def render(
    data: BoardData, sparks: Mapping[str, list[list[Any]]], pipeline: Mapping[str, float]
) -> str:
    """The whole page; every dynamic string is HTML-escaped."""
    panels = [_panel_html(p, data, sparks.get(p.title, [])) for p in PANELS]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(data.t))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="data:,"><title>cspulse</title>'
        f"<style>{STYLE}</style></head><body>"
        "<h1>cspulse</h1>"
        f'<p class="sub">Whole base, read at {stamp}. Refreshes every {REFRESH_SECONDS} s. '
        'Raw numbers: <a href="/metrics">/metrics</a>.</p>'
        f'<div class="grid">{"".join(panels)}'
        f"{_health_html(data)}{_pipeline_html(data, pipeline)}{_risk_html(data)}</div>"
        "</body></html>"
    )


def _panel_html(panel: Panel, data: BoardData, points: list[list[Any]]) -> str:
    nums = "".join(
        _number(h.title, value_of(data, h.metric, h.labels), h.unit) for h in panel.headlines
    )
    return (
        f'<section class="panel" data-panel="{html.escape(panel.title)}">'
        f'<h2>{html.escape(panel.title)}</h2><div class="nums">{nums}</div>'
        f'{sparkline(points)}<div class="cap">{html.escape(panel.spark_title)}, last 24 h</div>'
        "</section>"
    )


def _number(title: str, value: float | None, unit: str) -> str:
    """One headline; ``empty`` marks a number without data (a ratio with no denominator)."""
    css = "num" if value is not None else "num empty"
    return f'<div class="{css}"><b>{fmt(value, unit)}</b><span>{html.escape(title)}</span></div>'


def _health_html(data: BoardData) -> str:
    nums = "".join(
        f'<div class="num"><b>{data.bands.get(band, 0):,}</b><span>{label}</span></div>'
        for band, label in (("healthy", "Healthy"), ("neutral", "Neutral"), ("at_risk", "At risk"))
    )
    avg = fmt(data.health_avg, "score")
    return (
        '<section class="panel" data-panel="Customer health"><h2>Customer health</h2>'
        f'<div class="nums">{nums}<div class="num"><b>{avg}</b><span>Mean score</span></div>'
        "</div></section>"
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
    )
    return (
        '<section class="panel" data-panel="Pipeline"><h2>Pipeline</h2>'
        f'<div class="nums"><div class="num">{redis}<span>Redis</span></div>{nums}</div>'
        f"<table><tr><th>topic</th><th>newest event applied</th></tr>{rows}</table></section>"
    )


def _age(ts: float) -> str:
    return _duration(max(0.0, time.time() - ts))


def _risk_html(data: BoardData) -> str:
    rows = "".join(
        f'<tr id="account-{html.escape(r["account"])}"><td>{html.escape(r["account"])}</td>'
        f"<td>{r['score']:.0f}</td><td>{html.escape(r['band'])}</td>"
        f"<td>{html.escape('; '.join(r['reasons']) or NO_DATA)}</td></tr>"
        for r in data.risky
    )
    return (
        '<section class="panel wide" data-panel="At-risk accounts"><h2>At-risk accounts</h2>'
        "<table><tr><th>account</th><th>score</th><th>band</th><th>what pulls it down</th></tr>"
        f"{rows}</table>"
        '<div class="cap">Lowest scores first; as JSON with every component: '
        '<a href="/accounts/at-risk?limit=50">/accounts/at-risk</a></div></section>'
    )


def pipeline_counts(registry: CollectorRegistry) -> dict[str, float]:
    """This process's pipeline counters, summed over labels."""
    wanted = {
        "cs_events_total": "Events applied",
        "cs_events_invalid_total": "Dead-lettered",
        "cs_events_late_total": "Too late",
        "cs_consumer_lag_messages": "Consumer lag (messages)",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in wanted:
                out[wanted[sample.name]] += sample.value
    return out


class Board:
    """Serves the page and the series endpoint from one reader."""

    def __init__(
        self,
        reader: Reader,
        config: MetricConfig,
        health: HealthConfig,
        registry: CollectorRegistry,
    ) -> None:
        self.reader, self.config, self.health, self.registry = reader, config, health, registry

    def page(self) -> bytes:
        data = gather(self.reader, self.config, self.health)
        sparks: dict[str, list[list[Any]]] = {}
        if data.redis_ok:
            for panel in PANELS:
                series = bucket_series(
                    self.reader, self.config, panel.spark, dict(panel.spark_labels)
                )
                sparks[panel.title] = series["points"]
        return render(data, sparks, pipeline_counts(self.registry)).encode()

    def series(self, query: Mapping[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """``/api/series?metric=NAME[&label=value...][&hours=N]``: (HTTP status, JSON body)."""
        metric = (query.get("metric") or [""])[0]
        if not metric.startswith("cs_"):
            return 400, {"error": "metric is required, e.g. /api/series?metric=cs_tickets_opened"}
        try:
            hours = max(1, min(24 * 30, int((query.get("hours") or [str(HOURS)])[0])))
        except ValueError:
            return 400, {"error": "hours must be an integer (1-720)"}
        labels = {k: v[0] for k, v in query.items() if k not in ("metric", "hours", "window")}
        try:
            return 200, bucket_series(self.reader, self.config, metric, labels, hours)
        except (RedisError, OSError) as exc:
            return 503, {"error": f"could not read Redis: {exc}; retry when it is back"}
