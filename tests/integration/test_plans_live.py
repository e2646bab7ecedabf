"""Live traffic with a caught-up billing topic never waits (metrics.md, Segments).

A worker is caught up; then plan changes and tickets of the same accounts (the same
key, so co-partitioned) arrive live, more of them per moment than one batch holds
(``CSPULSE_BATCH_MAX=8``), each ticket a second after its account's plan change. No
partition is held for its billing partition (``cs_plan_waits_total`` stays 0), and
each ticket counts in the plan named just before it. Through the real broker.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from tests.harness import Published, Stack, dumps, last_offsets, publish, scrape, wait_applied
from tests.integration.conftest import fresh_names
from tests.scenarios import event

pytestmark = pytest.mark.slow

ROUNDS = 10
ACCOUNTS = ("acme", "globex", "initech", "umbrella")
PLANS = ("team", "pro")


def _plan(round_: int, index: int) -> str:
    return PLANS[(round_ + index) % len(PLANS)]


def _change(t: float, account: str, index: int, plan: str) -> bytes:
    return dumps(
        event(
            "subscription.changed",
            t,
            account,
            subscription_id=f"S-{index}",
            mrr_cents=1000,
            plan=plan,
            currency="USD",
        )
    )


async def _stream(bootstrap: str, prefix: str, start: float) -> list[Published]:
    """Each round, every account's plan change and then its ticket, a round every 0.2 s;
    each change is in Kafka before its ticket is sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    landed: list[Published] = []
    try:
        for r in range(ROUNDS):
            for i, account in enumerate(ACCOUNTS):
                t = start + 60 * r + i
                ticket = event(
                    "ticket.opened", t + 1, account, ticket_id=f"T-{r}-{i}", channel="chat"
                )
                for topic, value in (
                    ("billing", _change(t, account, i, _plan(r, i))),
                    ("tickets", dumps(ticket)),
                ):
                    record = await producer.send_and_wait(
                        prefix + topic, value, key=account.encode()
                    )
                    landed.append(Published(record.topic, record.partition, record.offset, value))
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()
    return landed


def test_live_tickets_never_wait_for_a_caught_up_billing_topic(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    worker = stack.new_worker(prefix, group, CSPULSE_BATCH_MAX="8").start()
    try:
        start = time.time() - 3600
        first = [
            (prefix + "billing", account.encode(), _change(start - 60, account, i, PLANS[0]))
            for i, account in enumerate(ACCOUNTS)
        ]
        wait_applied(stack.redis(), last_offsets(publish(stack.bootstrap, first)))
        sent = asyncio.run(_stream(stack.bootstrap, prefix, start))
        wait_applied(stack.redis(), last_offsets(sent))
        metrics = scrape(worker.port)
    finally:
        worker.stop()
    waits = sum(v for (name, _labels), v in metrics.items() if name == "cs_plan_waits_total")
    assert waits == 0
    for plan in PLANS:
        expected = sum(_plan(r, i) == plan for r in range(ROUNDS) for i in range(len(ACCOUNTS)))
        key = ("cs_tickets_opened", (("plan", plan), ("window", "1d")))
        assert metrics[key] == expected, plan
