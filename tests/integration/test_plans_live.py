"""Live traffic with a caught-up billing topic never waits (metrics.md, Segments).

A worker is caught up; then plan changes and tickets of the same accounts (the same
key, so co-partitioned) arrive live, more of them per moment than one batch holds
(``CSPULSE_BATCH_MAX=8``), each ticket a second after its account's plan change. No
partition is held for its billing partition (``cs_plan_waits_total`` stays 0), and
each ticket counts in the plan named just before it. Through the real broker.
"""

from __future__ import annotations

import time

import pytest

from tests.harness import (
    Message,
    Stack,
    dumps,
    last_offsets,
    publish,
    publish_paced,
    scrape,
    wait_applied,
)
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


def _rounds(prefix: str, start: float) -> list[list[Message]]:
    """Each round, every account's plan change and then its ticket."""
    rounds = []
    for r in range(ROUNDS):
        messages: list[Message] = []
        for i, account in enumerate(ACCOUNTS):
            t = start + 60 * r + i
            ticket = event("ticket.opened", t + 1, account, ticket_id=f"T-{r}-{i}", channel="chat")
            key = account.encode()
            messages.append((prefix + "billing", key, _change(t, account, i, _plan(r, i))))
            messages.append((prefix + "tickets", key, dumps(ticket)))
        rounds.append(messages)
    return rounds


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
        sent = publish_paced(stack.bootstrap, _rounds(prefix, start), pause=0.2)
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
