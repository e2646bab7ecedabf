"""Grafana dashboards for cspulse, generated from plain Python dicts.

Why generated: six boards share the same variables, datasource, refresh and
query conventions, and hand-edited JSON drifts. This module is the source of
truth; the JSON under ``dashboards/`` is its committed output so Grafana can
provision it without Python. Regenerate after any change with::

    python -m deploy.grafana.dashboards

Query conventions (the metric contract is ``metrics.md`` in the shared spec):

* Business gauges are read from Redis at scrape time, so every worker serves
  the same value. Queries take ``max`` over instances; summing would multiply
  the number by the replica count.
* Windowed gauges always pin ``window="$window"``: summing across windows is
  meaningless (the 30d window contains the 1h one).
* Business gauges select ``plan="$plan"``; the exporter emits ``plan="all"``
  for the whole base, which is the variable's default. Pipeline metrics have
  no plan label.
* Pipeline counters are per process, so they are summed across instances.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": "cspulse-prometheus"}
OUT_DIR = Path(__file__).resolve().parent / "dashboards"
WINDOWS = ("1h", "1d", "7d", "30d")
DEFAULT_WINDOW = "1d"
DEFAULT_PLAN = "all"
VARIABLE_DEFAULTS = {"window": DEFAULT_WINDOW, "plan": DEFAULT_PLAN}
REFRESH = "5s"
GRID_WIDTH = 24

# Units (Grafana unit ids). Money is in the reporting currency, USD by default.
RATIO = "percentunit"
SECONDS = "s"
MONEY = "currencyUSD"
COUNT = "short"
PER_SECOND = "ops"
SCORE = "none"

# Label matchers used by every business query.
W = 'window="$window", plan="$plan"'
P = 'plan="$plan"'

Step = tuple[str, float | None]


def red_below(limit: float, yellow_below: float | None = None) -> list[Step]:
    """Steps for "higher is better": red under ``limit``, optional yellow band."""
    steps: list[Step] = [("red", None)]
    if yellow_below is not None:
        steps.append(("yellow", limit))
        limit = yellow_below
    steps.append(("green", limit))
    return steps


def red_above(limit: float) -> list[Step]:
    """Steps for "lower is better": green up to ``limit``, red above it."""
    return [("green", None), ("red", limit)]


def target(expr: str, legend: str = "", ref_id: str = "A") -> Json:
    """One Prometheus query of a panel."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref_id,
    }


def _field_config(unit: str, steps: list[Step] | None) -> Json:
    """Unit and thresholds; no thresholds means a neutral single colour."""
    steps = steps or [("blue", None)]
    return {
        "defaults": {
            "unit": unit,
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": color, "value": value} for color, value in steps],
            },
        },
        "overrides": [],
    }


def _panel(
    kind: str,
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    steps: list[Step] | None,
    size: tuple[int, int],
) -> Json:
    """A panel without id and position; ``layout`` assigns those."""
    refs = "ABCDEFGH"
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend, refs[i]) for i, (expr, legend) in enumerate(queries)],
        "fieldConfig": _field_config(unit, steps),
        "gridPos": {"w": size[0], "h": size[1]},
    }


def stat(title: str, expr: str, unit: str, steps: list[Step] | None = None) -> Json:
    """A single current value, coloured by its thresholds."""
    panel = _panel("stat", title, [(expr, "")], unit, steps, (6, 4))
    panel["options"] = {
        "colorMode": "background" if steps else "value",
        "graphMode": "area",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": "auto",
    }
    return panel


def series(
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    steps: list[Step] | None = None,
) -> Json:
    """A time series; thresholds, when given, are drawn as dashed lines."""
    panel = _panel("timeseries", title, queries, unit, steps, (12, 8))
    panel["fieldConfig"]["defaults"]["custom"] = {
        "thresholdsStyle": {"mode": "dashed" if steps else "off"},
    }
    panel["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    }
    return panel


def layout(panels: Iterable[Json]) -> list[Json]:
    """Number panels and flow them left to right, wrapping at the grid width."""
    placed: list[Json] = []
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**panel, "id": number, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
        x, row_height = x + w, max(row_height, h)
    return placed


def window_variable() -> Json:
    """The window every windowed gauge is read at; one board serves them all."""
    options = [{"selected": w == DEFAULT_WINDOW, "text": w, "value": w} for w in WINDOWS]
    return {
        "name": "window",
        "label": "Window",
        "type": "custom",
        "query": ",".join(WINDOWS),
        "current": {"selected": True, "text": DEFAULT_WINDOW, "value": DEFAULT_WINDOW},
        "options": options,
        "includeAll": False,
        "multi": False,
        "hide": 0,
    }


def plan_variable() -> Json:
    """The plan slice; "all" is the whole base and always exported.

    No Grafana "All" option: it expands to a regex of every plan, which the
    exact ``plan="$plan"`` matcher cannot take. The exporter's own "all" is
    the whole base, so it is the default.
    """
    query = "label_values(cs_mrr, plan)"
    return {
        "name": "plan",
        "label": "Plan",
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": query,
        "current": {"selected": True, "text": DEFAULT_PLAN, "value": DEFAULT_PLAN},
        "options": [],
        "includeAll": False,
        "multi": False,
        "refresh": 1,
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def dashboard(slug: str, title: str, panels: list[Json]) -> Json:
    """Wrap panels in a dashboard with the settings every cspulse board shares."""
    return {
        "uid": f"cspulse-{slug}",
        "title": f"cspulse / {title}",
        "tags": ["cspulse"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": REFRESH,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "annotations": {"list": []},
        "links": [
            {
                "title": "cspulse",
                "type": "dashboards",
                "tags": ["cspulse"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": [window_variable(), plan_variable()]},
        "panels": layout(panels),
    }


def support() -> Json:
    """Help-desk quality and load (cs.tickets)."""
    return dashboard(
        "support",
        "Support",
        [
            stat(
                "First contact resolution",
                f"max(cs_fcr_ratio{{{W}}})",
                RATIO,
                red_below(0.6, yellow_below=0.75),
            ),
            stat(
                "First response time (avg)", f"max(cs_first_response_seconds_avg{{{W}}})", SECONDS
            ),
            stat("Resolution time (avg)", f"max(cs_resolution_seconds_avg{{{W}}})", SECONDS),
            stat("Open tickets (backlog)", f"max(cs_tickets_open{{{P}}})", COUNT),
            series(
                "Tickets opened and resolved",
                [
                    (f"max(cs_tickets_opened{{{W}}})", "opened"),
                    (f"max(cs_tickets_resolved{{{W}}})", "resolved"),
                ],
                COUNT,
            ),
            series(
                "First contact resolution",
                [(f"max(cs_fcr_ratio{{{W}}})", "FCR")],
                RATIO,
                red_below(0.6, yellow_below=0.75),
            ),
            series(
                "Response and resolution times (avg)",
                [
                    (f"max(cs_first_response_seconds_avg{{{W}}})", "first response"),
                    (f"max(cs_resolution_seconds_avg{{{W}}})", "resolution"),
                ],
                SECONDS,
            ),
            series("Backlog", [(f"max(cs_tickets_open{{{P}}})", "open tickets")], COUNT),
            stat(
                "First response time (median)", quantile(0.5, "cs_first_response_seconds"), SECONDS
            ),
            stat("First response time (p90)", quantile(0.9, "cs_first_response_seconds"), SECONDS),
            stat("Resolution time (median)", quantile(0.5, "cs_resolution_seconds"), SECONDS),
            stat("Resolution time (p90)", quantile(0.9, "cs_resolution_seconds"), SECONDS),
            series(
                "Response and resolution times (median and p90)",
                [
                    (quantile(0.5, "cs_first_response_seconds"), "first response, median"),
                    (quantile(0.9, "cs_first_response_seconds"), "first response, p90"),
                    (quantile(0.5, "cs_resolution_seconds"), "resolution, median"),
                    (quantile(0.9, "cs_resolution_seconds"), "resolution, p90"),
                ],
                SECONDS,
            ),
        ],
    )


def quantile(q: float, histogram: str) -> str:
    """A percentile of a gauge histogram; ``max by (le)`` keeps one copy over replicas.

    Prometheus interpolates linearly inside the bucket that holds the
    percentile, so the value is an estimate within that bucket's bounds.
    """
    return f"histogram_quantile({q}, max by (le) ({histogram}_bucket{{{W}}}))"


def voice() -> Json:
    """Survey scores and comment sentiment (cs.surveys).

    NPS thresholds follow the usual reading: below 0 more detractors than
    promoters, 30 and up good. CSAT and CES thresholds are starting points.
    """
    return dashboard(
        "voice",
        "Voice of the customer",
        [
            stat("NPS", f"max(cs_nps{{{W}}})", SCORE, red_below(0, yellow_below=30)),
            stat("CSAT", f"max(cs_csat_ratio{{{W}}})", RATIO, red_below(0.7, yellow_below=0.8)),
            stat(
                "CES (1-7, higher is easier)",
                f"max(cs_ces_avg{{{W}}})",
                SCORE,
                red_below(4, yellow_below=5),
            ),
            stat("Survey responses", f"sum(max by (kind) (cs_survey_responses{{{W}}}))", COUNT),
            series("NPS", [(f"max(cs_nps{{{W}}})", "NPS")], SCORE, red_below(0, yellow_below=30)),
            series(
                "CSAT",
                [(f"max(cs_csat_ratio{{{W}}})", "CSAT")],
                RATIO,
                red_below(0.7, yellow_below=0.8),
            ),
            series(
                "Survey responses by kind",
                [(f"max by (kind) (cs_survey_responses{{{W}}})", "{{kind}}")],
                COUNT,
            ),
            series(
                "Comment sentiment",
                [(f"max by (sentiment) (cs_feedback_comments{{{W}}})", "{{sentiment}}")],
                COUNT,
            ),
        ],
    )


def usage() -> Json:
    """Product engagement (cs.logins)."""
    return dashboard(
        "usage",
        "Product usage",
        [
            stat("Active users", f"max(cs_active_users{{{W}}})", COUNT),
            stat("Active accounts", f"max(cs_active_accounts{{{W}}})", COUNT),
            stat("Stickiness (DAU / MAU)", f"max(cs_stickiness_ratio{{{P}}})", RATIO),
            stat(
                "Product usage (active / paying accounts)",
                f"max(cs_product_usage_ratio{{{W}}})",
                RATIO,
            ),
            stat("Time in app", f"max(cs_time_in_app_seconds{{{W}}})", SECONDS),
            stat("Time in app per user", f"max(cs_time_in_app_seconds_per_user{{{W}}})", SECONDS),
            stat("Sessions", f"max(cs_sessions{{{W}}})", COUNT),
            stat("Active sessions now", f"max(cs_sessions_active{{{P}}})", COUNT),
            series(
                "Active users and accounts",
                [
                    (f"max(cs_active_users{{{W}}})", "users"),
                    (f"max(cs_active_accounts{{{W}}})", "accounts"),
                ],
                COUNT,
            ),
            series(
                "Stickiness and product usage",
                [
                    (f"max(cs_stickiness_ratio{{{P}}})", "stickiness"),
                    (f"max(cs_product_usage_ratio{{{W}}})", "product usage"),
                ],
                RATIO,
            ),
            series(
                "Sessions",
                [
                    (f"max(cs_sessions{{{W}}})", "sessions in window"),
                    (f"max(cs_sessions_active{{{P}}})", "active now"),
                ],
                COUNT,
            ),
            series(
                "Time in app per user",
                [
                    (f"max(cs_time_in_app_seconds_per_user{{{W}}})", "per user"),
                ],
                SECONDS,
            ),
        ],
    )


def revenue() -> Json:
    """MRR, churn and retention (cs.billing).

    Churn and retention thresholds are tuned for the 30d window (5 % monthly
    churn is a common alarm level); read shorter windows against their trend.
    NRR under 100 % means the base shrinks without new sales; GRR under 90 %
    is a common alarm level; a quick ratio of 4 or more is healthy growth,
    under 1 the base shrinks.
    """
    return dashboard(
        "revenue",
        "Revenue and churn",
        [
            stat("MRR", f"max(cs_mrr{{{P}}})", MONEY),
            stat("Paying accounts", f"max(cs_paying_accounts{{{P}}})", COUNT),
            stat("Churned accounts", f"max(cs_churned_accounts{{{W}}})", COUNT),
            stat("Churn", f"max(cs_churn_ratio{{{W}}})", RATIO, red_above(0.05)),
            stat("Retention", f"max(cs_retention_ratio{{{W}}})", RATIO, red_below(0.95)),
            stat("Renewal", f"max(cs_renewal_ratio{{{W}}})", RATIO, red_below(0.8)),
            stat("Trial conversion", f"max(cs_trial_conversion_ratio{{{W}}})", RATIO),
            stat("Payment failures", f"max(cs_payment_failures{{{W}}})", COUNT),
            stat("ARPA", f"max(cs_arpa{{{P}}})", MONEY),
            stat("CLV", f"max(cs_clv{{{P}}})", MONEY),
            stat("Retention cost per paying account", f"max(cs_retention_cost{{{W}}})", MONEY),
            stat(
                "Net revenue retention (NRR)",
                f"max(cs_nrr_ratio{{{W}}})",
                RATIO,
                red_below(0.9, yellow_below=1.0),
            ),
            stat(
                "Gross revenue retention (GRR)",
                f"max(cs_grr_ratio{{{W}}})",
                RATIO,
                red_below(0.8, yellow_below=0.9),
            ),
            stat("Revenue churn", f"max(cs_revenue_churn_ratio{{{W}}})", RATIO, red_above(0.03)),
            stat("MRR at the window's start", f"max(cs_mrr_start{{{W}}})", MONEY),
            series("MRR", [(f"max(cs_mrr{{{P}}})", "MRR")], MONEY),
            series(
                "MRR movements by kind",
                [(f"max by (kind) (cs_mrr_movement{{{W}}})", "{{kind}}")],
                MONEY,
            ),
            series(
                "Churn and retention",
                [
                    (f"max(cs_churn_ratio{{{W}}})", "churn"),
                    (f"max(cs_retention_ratio{{{W}}})", "retention"),
                    (f"max(cs_renewal_ratio{{{W}}})", "renewal"),
                    (f"max(cs_trial_conversion_ratio{{{W}}})", "trial conversion"),
                ],
                RATIO,
            ),
            series(
                "Accounts",
                [
                    (f"max(cs_paying_accounts{{{P}}})", "paying"),
                    (f"max(cs_churned_accounts{{{W}}})", "churned in window"),
                    (f"max(cs_payment_failures{{{W}}})", "payment failures in window"),
                ],
                COUNT,
            ),
            series(
                "Quick ratio (MRR gained / MRR lost)",
                [(f"max(cs_quick_ratio{{{W}}})", "quick ratio")],
                SCORE,
                red_below(1, yellow_below=4),
            ),
            series(
                "Revenue retention",
                [
                    (f"max(cs_nrr_ratio{{{W}}})", "NRR"),
                    (f"max(cs_grr_ratio{{{W}}})", "GRR"),
                    (f"max(cs_revenue_churn_ratio{{{W}}})", "revenue churn"),
                ],
                RATIO,
            ),
        ],
    )


def health() -> Json:
    """Account health bands; thresholds match the band limits (40, 70)."""
    bands = f"max by (band) (cs_accounts_by_health{{{P}}})"
    at_risk = f'max(cs_accounts_by_health{{band="at_risk", {P}}})'
    return dashboard(
        "health",
        "Customer health",
        [
            stat(
                "Average health score",
                f"max(cs_health_score_avg{{{P}}})",
                SCORE,
                red_below(40, yellow_below=70),
            ),
            stat("Accounts at risk", at_risk, COUNT),
            stat("Share at risk", f"{at_risk} / sum({bands})", RATIO),
            stat("Healthy accounts", f'max(cs_accounts_by_health{{band="healthy", {P}}})', COUNT),
            series("Accounts by health band", [(bands, "{{band}}")], COUNT),
            series(
                "Average health score",
                [(f"max(cs_health_score_avg{{{P}}})", "score")],
                SCORE,
                red_below(40, yellow_below=70),
            ),
        ],
    )


def pipeline() -> Json:
    """Is cspulse keeping up? Thresholds mirror the PipelineStalled alert."""
    lag = "max by (topic, partition) (cs_consumer_lag_messages)"
    batch = "sum by (le) (rate(cs_batch_seconds_bucket[5m]))"
    return dashboard(
        "pipeline",
        "Pipeline health",
        [
            stat("Events applied / s", "sum(rate(cs_events_total[1m]))", PER_SECOND),
            stat(
                "Event lag (newest event)",
                "time() - max(cs_latest_event_timestamp_seconds)",
                SECONDS,
                red_above(600),
            ),
            stat("Consumer lag", f"sum({lag})", COUNT, red_above(10000)),
            stat("Redis up (worst worker)", "min(cs_redis_up)", COUNT, red_below(1)),
            series(
                "Events applied by topic",
                [("sum by (topic) (rate(cs_events_total[1m]))", "{{topic}}")],
                PER_SECOND,
            ),
            series(
                "Dead letters by reason",
                [("sum by (reason) (rate(cs_events_invalid_total[5m]))", "{{reason}}")],
                PER_SECOND,
            ),
            series(
                "Late, duplicate and stale events",
                [
                    ("sum(rate(cs_events_late_total[5m]))", "late"),
                    ("sum(rate(cs_events_duplicate_total[5m]))", "duplicate"),
                    ("sum(rate(cs_events_stale_total[5m]))", "stale"),
                ],
                PER_SECOND,
            ),
            series(
                "Event lag by topic",
                [("time() - max by (topic) (cs_latest_event_timestamp_seconds)", "{{topic}}")],
                SECONDS,
                red_above(600),
            ),
            series(
                "Consumer lag by topic",
                [(f"sum by (topic) ({lag})", "{{topic}}")],
                COUNT,
                red_above(10000),
            ),
            series(
                "Batch apply time",
                [
                    (f"histogram_quantile(0.5, {batch})", "p50"),
                    (f"histogram_quantile(0.99, {batch})", "p99"),
                ],
                SECONDS,
            ),
            series(
                "Redis up by worker",
                [("min by (instance) (cs_redis_up)", "{{instance}}")],
                COUNT,
                red_below(1),
            ),
            series(
                "Scrape time reading Redis",
                [("max by (instance) (cs_collect_duration_seconds)", "{{instance}}")],
                SECONDS,
            ),
        ],
    )


def build_all() -> dict[str, Json]:
    """Every dashboard, keyed by its file name under ``dashboards/``."""
    boards = [support(), voice(), usage(), revenue(), health(), pipeline()]
    return {f"{board['uid']}.json": board for board in boards}


def render(board: Json) -> str:
    """Deterministic JSON text, so regeneration gives a clean diff."""
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def panel_queries(board: Json, variables: dict[str, str] | None = None) -> list[str]:
    """Every panel query with template variables replaced, ready for Prometheus.

    Defaults are window=1d and plan=all, the values a fresh board shows.
    """
    values = {**VARIABLE_DEFAULTS, **(variables or {})}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    pattern = re.compile(r"\$\{(\w+)\}|\$(\w+)")
    return [
        pattern.sub(substitute, t["expr"])
        for panel in board["panels"]
        for t in panel.get("targets", [])
    ]


def main(out_dir: Path = OUT_DIR) -> None:
    """Write every dashboard as ``<uid>.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, board in build_all().items():
        (out_dir / name).write_text(render(board), encoding="utf-8")
        print(f"wrote {out_dir / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
