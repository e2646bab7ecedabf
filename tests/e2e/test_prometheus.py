"""cspulse behind a real Prometheus: every dashboard query has data, ChurnSpike fires.

The fixtures (conftest.py) run two deployments on one broker: normal traffic
and the generator's churn-spike scenario, each scraped every second by its
own Prometheus evaluating a copy of the shipped rules (``for:`` shortened).
Run: ``pytest tests/e2e -s`` (about 3 minutes; skipped without ``prometheus``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from deploy.grafana.dashboards import build_all, panel_queries
from tests.e2e.conftest import Deployment, QueryError, World, wait_for

# One xdist worker runs every test that shares the session-wide `world`.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.xdist_group("world")]

FIRST_DATA_TIMEOUT = 180  # session start: broker, two workers, the generators' first hour
PANEL_TIMEOUT = 90  # rate() needs two samples, histogram quantiles a few batches
CHURN_TIMEOUT = 330  # from the churn generator's start: burst at +2 min, 20 churned ~1 min later
NORMAL_OBSERVED = 160  # watch normal traffic as long as the churn-spike run took to fire
SHOWN_QUERY = 'max(cs_fcr_ratio{window="1d", plan="all"})'
CHURNED_1H = 'max(cs_churned_accounts{window="1h", plan="all"})'

# Panel queries that cannot have data a few minutes into a fresh deployment.
# Each entry says why; everything else must return a non-empty, non-NaN result.
ALLOWED_EMPTY = {
    # CLV = ARPA x gross margin / the 30d churn ratio, whose denominator is the
    # accounts paying at the start of the 30d window: none in a deployment
    # younger than 30 days. Nor can the test inject one: retention is the 30d
    # window plus one hour bucket, so such an event would have to land in that
    # single slack bucket, and would turn too late when the hour rolls over.
    'max(cs_clv{plan="all"})': "needs 30 days of history",
}


def dashboard_queries() -> list[tuple[str, str]]:
    """(dashboard file, query) for every panel target, with the default variables."""
    return [(name, q) for name, board in build_all().items() for q in panel_queries(board)]


def problem(dep: Deployment, expr: str) -> str | None:
    """Why ``expr`` shows nothing on a panel, or None when it has data."""
    try:
        result = dep.prom.query(expr)
    except QueryError as exc:
        return f"error: {exc}"
    if not result:
        return "empty result"
    values = [float(sample["value"][1]) for sample in result]
    if all(math.isnan(v) for v in values):
        return f"only NaN: {result}"
    return None


def problems(dep: Deployment, queries: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    found = {}
    for board, expr in queries:
        why = problem(dep, expr)
        if why is not None:
            found[(board, expr)] = why
    return found


def poll_panels(dep: Deployment, queries: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Re-run failing queries until all have data or PANEL_TIMEOUT passes; what still fails."""
    deadline = time.monotonic() + PANEL_TIMEOUT
    failing = problems(dep, queries)
    while failing and time.monotonic() < deadline:
        time.sleep(3)
        failing = problems(dep, list(failing))
    return failing


def first_value(dep: Deployment, expr: str) -> Any:
    result = dep.prom.query(expr)
    return result[0]["value"][1] if result else None


def test_every_dashboard_query_returns_data(world: World) -> None:
    dep = world.normal
    wait_for(
        lambda: dep.prom.query('cs_mrr{plan="all"}'), FIRST_DATA_TIMEOUT, "first cs_mrr scrape"
    )
    queries = dashboard_queries()
    assert set(ALLOWED_EMPTY) <= {q for _, q in queries}, "allow-list names unknown queries"
    checked = [(b, q) for b, q in queries if q not in ALLOWED_EMPTY]
    failing = poll_panels(dep, checked)
    report = "\n".join(f"{board}: {expr}\n    -> {why}" for (board, expr), why in failing.items())
    assert not failing, f"{len(failing)} of {len(checked)} panel queries show no data:\n{report}"
    print(f"\n{len(checked)} panel queries have data")
    for expr in ALLOWED_EMPTY:
        print(f"allowed empty: {expr} ({problem(dep, expr) or 'has data now'})")
    print(f"panel query {SHOWN_QUERY} -> {first_value(dep, SHOWN_QUERY)}")


def active_churn_spike(dep: Deployment) -> list[dict[str, Any]]:
    return [a for a in dep.prom.alerts("ChurnSpike") if a["state"] in ("pending", "firing")]


def test_churn_spike_alert_fires(world: World) -> None:
    dep = world.churn
    left = CHURN_TIMEOUT - dep.running_for()
    try:
        alerts = wait_for(lambda: active_churn_spike(dep), max(left, 10), "ChurnSpike active", 2)
    except AssertionError as exc:
        now = first_value(dep, CHURNED_1H)
        raise AssertionError(f"{exc}; {CHURNED_1H} = {now}\n{dep.logs()}") from exc
    alert = alerts[0]
    assert alert["labels"]["severity"] == "critical", alert
    value = float(alert["value"])
    print(f"\nChurnSpike {alert['state']} since {alert['activeAt']}: {CHURNED_1H} = {value:g}")


def test_no_churn_spike_in_normal_traffic(world: World) -> None:
    dep = world.normal
    time.sleep(max(0.0, NORMAL_OBSERVED - dep.running_for()))  # no wait after the tests above
    rule = dep.prom.rule("ChurnSpike")
    assert rule["health"] == "ok", rule
    churned = wait_for(lambda: first_value(dep, CHURNED_1H), FIRST_DATA_TIMEOUT, CHURNED_1H)
    assert float(churned) < 20, f"{CHURNED_1H} = {churned}"
    # never pending or firing during the whole run, not just now
    ever = dep.prom.query('count_over_time(ALERTS{alertname="ChurnSpike"}[1h])')
    assert not ever, f"ChurnSpike was active on normal traffic: {ever}"
    print(f"\nnormal traffic, {dep.running_for():.0f}s: {CHURNED_1H} = {churned}, no ChurnSpike")


BUCKETS_FIRST_RESPONSE = 'max by (le) (cs_first_response_seconds_bucket{window="1d", plan="all"})'
P90_FIRST_RESPONSE = f"histogram_quantile(0.9, {BUCKETS_FIRST_RESPONSE})"


def interpolated_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' rule, written out: linear inside the bucket holding rank q x count.

    ``buckets`` are (upper bound, cumulative count) sorted by bound, +Inf last.
    """
    count = buckets[-1][1]
    rank = q * count
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # the highest finite bound, as Prometheus does
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    raise AssertionError("rank beyond the +Inf bucket")


def test_p90_first_response_from_histogram_quantile(world: World) -> None:
    dep = world.normal

    def has_replies() -> float | None:
        at = time.time() - 2  # a moment every scrape so far has covered
        result = dep.prom.api("query", query=BUCKETS_FIRST_RESPONSE, time=f"{at:.3f}")["result"]
        counts = {float(s["metric"]["le"]): float(s["value"][1]) for s in result}
        return at if counts.get(math.inf, 0) > 0 else None

    at = wait_for(has_replies, FIRST_DATA_TIMEOUT, "first-response buckets with tickets", 3)
    raw = dep.prom.api("query", query=BUCKETS_FIRST_RESPONSE, time=f"{at:.3f}")["result"]
    buckets = sorted((float(s["metric"]["le"]), float(s["value"][1])) for s in raw)
    assert [b for b, _ in buckets][-1] == math.inf and len(buckets) == 10, buckets
    counts = [c for _, c in buckets]
    assert counts == sorted(counts), f"buckets are not cumulative: {buckets}"
    p90 = dep.prom.api("query", query=P90_FIRST_RESPONSE, time=f"{at:.3f}")["result"]
    value = float(p90[0]["value"][1])
    assert math.isclose(value, interpolated_quantile(0.9, buckets), rel_tol=1e-9), (value, buckets)
    print(f"\np90 first response (1d): {value:.0f} s over {counts[-1]:.0f} tickets")
