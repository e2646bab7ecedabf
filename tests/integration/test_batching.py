"""A worker tops up a batch for ``CSPULSE_BATCH_WITHIN`` seconds, through the real broker.

A trickle of events (one every 0.15 s) is applied in one or two batches when the
worker may wait 3 s to fill a batch, and in about one batch per event when it may
not wait; either way every event counts once.
"""

from __future__ import annotations

import time

import pytest

from tests.harness import Stack, dumps, last_offsets, publish, publish_paced, scrape, wait_applied
from tests.integration.conftest import fresh_names
from tests.scenarios import event

pytestmark = pytest.mark.slow

TRICKLE = 12
OPENED_1H = ("cs_tickets_opened", (("plan", "all"), ("window", "1h")))


def _batches_for_a_trickle(stack: Stack, within: float) -> tuple[float, float]:
    """(partition batches the worker applied, tickets opened it serves)."""
    prefix, group = fresh_names(stack)
    worker = stack.new_worker(prefix, group, CSPULSE_BATCH_WITHIN=str(within)).start()
    try:
        # a first event, applied, so the worker is past its start-up before the trickle
        start = time.time() - 60
        sent = publish(stack.bootstrap, [(prefix + "tickets", b"acme", _opened(start, 0))])
        wait_applied(stack.redis(), last_offsets(sent))
        before = scrape(worker.port).get(("cs_batch_seconds_count", ()), 0)
        trickle = [
            [(prefix + "tickets", b"acme", _opened(start, i))] for i in range(1, TRICKLE + 1)
        ]
        sent = publish_paced(stack.bootstrap, trickle, pause=0.15)
        wait_applied(stack.redis(), last_offsets(sent))
        metrics = scrape(worker.port)
        return metrics[("cs_batch_seconds_count", ())] - before, metrics[OPENED_1H]
    finally:
        worker.stop()


def _opened(start: float, i: int) -> bytes:
    return dumps(event("ticket.opened", start + i, "acme", ticket_id=f"T-{i}", channel="email"))


def test_a_trickle_is_applied_in_few_batches_when_the_worker_may_wait(stack: Stack) -> None:
    batches, opened = _batches_for_a_trickle(stack, within=3.0)
    assert opened == TRICKLE + 1
    assert batches <= 2


def test_a_trickle_is_applied_as_it_comes_when_the_worker_may_not_wait(stack: Stack) -> None:
    batches, opened = _batches_for_a_trickle(stack, within=0.0)
    assert opened == TRICKLE + 1
    assert batches >= TRICKLE / 2
