"""The health index against a real redis-server: versioned scores, paying-active index."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio

from aggregators import health_index, keys
from aggregators.facts import BillingFacts, TicketFacts, UsageFacts
from aggregators.health import HealthConfig
from aggregators.health_index import SCORES, SUM, USAGE_PLAN, HealthIndex, usage_key
from tests.harness import Stack
from tests.integration.conftest import fresh_names

CONFIG = HealthConfig.load()


def test_a_health_index_race_between_two_topics_keeps_the_newest_score(stack: Stack) -> None:
    fresh_names(stack)
    now = time.time()

    async def race() -> None:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        tickets, logins = HealthIndex(client, CONFIG), HealthIndex(client, CONFIG)
        # the tickets worker writes and reads first (one open ticket) ...
        early = await tickets.write_mirrors(
            "tickets", ["acme"], {"acme": TicketFacts(open=1.0, last=now)}
        )
        # ... the logins worker writes after it and indexes first: its read holds both
        await logins.update("logins", {"acme": UsageFacts(days=[int(now // 86400)], last=now)}, now)
        newest = await client.zscore(SCORES, "acme")
        # the tickets worker's index call comes last, with its older read: ignored
        await tickets.index({"acme": early[0]}, now)
        assert await client.zscore(SCORES, "acme") == newest
        await client.aclose()

    asyncio.run(race())
    # usage 1 day of 20 -> 5; support: one open ticket -> 0.5 * 85 + 0.5 * 100 = 92.5;
    # sentiment 60 (no answers); billing 100
    expected = 0.35 * 5 + 0.20 * 92.5 + 0.25 * 60 + 0.20 * 100
    assert abs(stack.redis().zscore(SCORES, "acme") - expected) < 1e-9  # type: ignore[operator]


def test_paying_accounts_enter_and_leave_the_usage_index(stack: Stack) -> None:
    fresh_names(stack)
    now = time.time()

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        index = HealthIndex(client, CONFIG)
        await index.update(
            "logins", {"a": UsageFacts(last=now - 60), "b": UsageFacts(last=now)}, now
        )
        await index.update("billing", {"a": BillingFacts(paying=True, plan="team", last=now)}, now)
        assert await client.zrange(usage_key(), 0, -1) == [b"a"]  # b is active, not paying
        assert await client.zscore(usage_key("team"), "a") == now - 60  # its session time
        await index.update("billing", {"a": BillingFacts(paying=True, plan="pro", last=now)}, now)
        assert await client.zcard(usage_key("team")) == 0  # moved plan
        assert await client.zscore(usage_key("pro"), "a") == now - 60
        await index.update("billing", {"a": BillingFacts(paying=False, plan="pro", last=now)}, now)
        assert await client.zcard(usage_key()) == 0 and await client.zcard(usage_key("pro")) == 0
        await client.aclose()

    asyncio.run(scenario())


def test_an_update_split_into_several_script_calls_leaves_the_same_index(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    tickets = {f"acct-{i}": TicketFacts(open=float(i % 3), last=now - i * 3600) for i in range(7)}
    billing = {
        f"acct-{i}": BillingFacts(paying=i % 2 == 0, plan=("team", "pro")[i % 3 == 0], last=now)
        for i in range(0, 7, 2)
    }

    async def scenario() -> dict[str, Any]:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        index = HealthIndex(client, CONFIG)
        await index.update("tickets", tickets, now)
        await index.update("logins", {a: UsageFacts(last=now - 60) for a in tickets}, now)
        await index.update("billing", billing, now)
        state: dict[str, Any] = {
            keys.text(key): await client.zrange(key, 0, -1, withscores=True)
            for key in sorted(await client.keys(f"{SCORES.rsplit(':', 1)[0]}:*"))
            if await client.type(key) == b"zset"
        }
        state["sum"] = await client.get(SUM)
        state["plans"] = await client.hgetall(USAGE_PLAN)
        await client.aclose()
        return state

    fresh_names(stack)
    whole = asyncio.run(scenario())
    fresh_names(stack)
    monkeypatch.setattr(health_index, "ACCOUNTS_PER_CALL", 2)
    assert asyncio.run(scenario()) == whole
    assert len(whole[SCORES]) == 7 and whole["plans"]
