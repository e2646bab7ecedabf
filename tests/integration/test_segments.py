"""Sparse data and plan changes, through the real broker and Redis.

A base with billing events only: every ratio without data must be absent
(never NaN, never a made-up 0), and an account that changes plan mid-window
must move its MRR from one plan segment to the other.
"""

from __future__ import annotations

import math
import time
import urllib.request

import orjson
import pytest

from tests import reference
from tests.compare import business, mismatches
from tests.harness import Stack, last_offsets, publish, scrape, wait_applied
from tests.integration.conftest import fresh_names
from tests.scenarios import Scenario, event

USD = {"currency": "USD"}


@pytest.fixture(scope="module")
def billing_only(stack: Stack):  # type: ignore[no-untyped-def]
    prefix, group = fresh_names(stack)
    now = time.time()
    scenario = Scenario()
    # acme: starter 49.00, upgraded to team 199.00 half an hour later
    scenario.add(
        event(
            "subscription.started",
            now - 3600,
            "acme",
            subscription_id="A1",
            plan="starter",
            mrr_cents=4900,
            **USD,
        )
    )
    scenario.add(
        event(
            "subscription.changed",
            now - 1800,
            "acme",
            subscription_id="A1",
            plan="team",
            mrr_cents=19900,
            **USD,
        )
    )
    # globex: team 199.00, canceled ten minutes later
    scenario.add(
        event(
            "subscription.started",
            now - 1500,
            "globex",
            subscription_id="G1",
            plan="team",
            mrr_cents=19900,
            **USD,
        )
    )
    scenario.add(event("subscription.canceled", now - 900, "globex", subscription_id="G1"))
    worker = stack.new_worker(prefix, group).start()
    published = publish(stack.bootstrap, [(prefix + t, k, v) for t, k, v in scenario.messages])
    wait_applied(stack.redis(), last_offsets(published))
    yield worker, scenario
    worker.stop()


def test_no_data_means_absent_not_nan(billing_only) -> None:  # type: ignore[no-untyped-def]
    worker, scenario = billing_only
    metrics = scrape(worker.port)
    assert not [k for k, v in metrics.items() if math.isnan(v)]
    whole = business(metrics)
    for name in (
        "cs_fcr_ratio",
        "cs_nps",
        "cs_csat_ratio",
        "cs_ces_avg",
        "cs_first_response_seconds_avg",
        "cs_time_in_app_seconds_per_user",
        "cs_stickiness_ratio",
        "cs_renewal_ratio",
        "cs_trial_conversion_ratio",
    ):
        assert not [k for k in whole if k[0] == name], f"{name} has no data and must be absent"
    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    problems = mismatches(metrics, reference.compute(scenario.valid, t))
    assert not problems, "\n".join(problems)


def test_plan_change_moves_mrr_between_segments(billing_only) -> None:  # type: ignore[no-untyped-def]
    worker, _scenario = billing_only
    metrics = scrape(worker.port)
    team, starter = business(metrics, "team"), business(metrics, "starter")
    mrr = ("cs_mrr", (("currency", "USD"),))
    assert team[mrr] == 199.0  # acme now; globex churned
    assert starter.get(mrr, 0.0) == 0.0
    assert team[("cs_paying_accounts", ())] == 1
    movement = "cs_mrr_movement"
    window = (("currency", "USD"), ("kind", "{}"), ("window", "1h"))

    def moved(segment: dict, kind: str) -> float:  # type: ignore[type-arg]
        return segment.get((movement, tuple((k, v.format(kind)) for k, v in window)), 0.0)

    assert moved(starter, "new") == 49.0  # acme joined on starter
    assert moved(team, "expansion") == 150.0  # its upgrade lands in team
    assert moved(team, "new") == 199.0  # globex joined on team
    assert moved(team, "churned") == 199.0  # and left from team
    assert team[("cs_churned_accounts", (("window", "1h"),))] == 1


def series(port: int, query: str) -> list[float | None]:
    url = f"http://127.0.0.1:{port}/api/series?{query}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return [value for _start, value in orjson.loads(resp.read())["points"]]


def test_series_points_add_up_to_the_movements_and_end_at_mrr_now(billing_only) -> None:  # type: ignore[no-untyped-def]
    worker, _scenario = billing_only
    new = series(worker.port, "metric=cs_mrr_movement&kind=new")
    assert len(new) == 24 and sum(v or 0.0 for v in new) == 49.0 + 199.0  # acme, globex
    assert sum(v or 0.0 for v in series(worker.port, "metric=cs_mrr_movement&kind=churned")) == 199
    mrr = series(worker.port, "metric=cs_mrr")
    assert mrr[0] == 0.0 and mrr[-1] == 199.0  # nothing a day ago; acme on team now
