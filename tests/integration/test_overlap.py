"""A backlog is applied with two batches in flight, through the real broker and Redis.

In a backlog the worker starts the next batch (of other partitions) while the
previous one is still applied, so Python's work overlaps Redis's. The standard
scenario is published before the worker starts, in batches of 16 records, so
there is a backlog of many batches: every metric still equals the reference
computation, and, in a worker run in this process, batches overlapped and never
shared a partition.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition

from streams.app import Worker
from streams.cli import redis_client
from streams.config import Settings
from tests import reference
from tests.compare import mismatches
from tests.harness import (
    Published,
    Stack,
    applied_offsets,
    last_offsets,
    publish,
    scrape,
    wait_applied,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import Scenario, standard

pytestmark = pytest.mark.slow

SMALL_BATCH = "16"


def _backlog(stack: Stack, prefix: str) -> tuple[Scenario, list[Published]]:
    scenario = standard(time.time())
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    return scenario, publish(stack.bootstrap, messages)


def test_a_backlog_applied_with_batches_in_flight_matches_the_reference(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    scenario, published = _backlog(stack, prefix)
    worker = stack.new_worker(prefix, group, CSPULSE_BATCH_MAX=SMALL_BATCH).start()
    try:
        wait_applied(stack.redis(), last_offsets(published))
        newest = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
        expected = reference.compute(scenario.valid, newest)
        scraped = scrape(worker.port)
        problems = mismatches(scraped, expected, "all")
        assert not problems, "\n".join(problems[:40])
        applied = sum(v for (n, _), v in scraped.items() if n == "cs_events_total")
        assert applied == len(scenario.valid)
    finally:
        worker.stop()


class Watched(Worker):
    """The worker, recording the partitions of each batch while it is applied."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.now_applying: list[frozenset[TopicPartition]] = []
        self.overlaps: list[tuple[frozenset[TopicPartition], ...]] = []

    async def apply(self, batch: dict[TopicPartition, Any], *args: Any) -> None:
        mine = frozenset(batch)
        if self.now_applying:
            self.overlaps.append((*self.now_applying, mine))
        self.now_applying.append(mine)
        try:
            await super().apply(batch, *args)
        finally:
            self.now_applying.remove(mine)


async def _run_until_applied(
    settings: Settings, stack: Stack, offsets: dict[tuple[str, int], int]
) -> Watched:
    worker = Watched(settings, stack.bootstrap, redis_client(settings, stack.redis_url))
    running = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 90
    client = stack.redis()
    while any(applied_offsets(client, offsets)[tp] < last for tp, last in offsets.items()):
        assert time.monotonic() < deadline, "the backlog was not applied in 90 s"
        assert not running.done(), running.exception()
        await asyncio.sleep(0.1)
    worker.stopping.set()
    await running
    return worker


def test_batches_in_flight_overlap_and_never_share_a_partition(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    _scenario, published = _backlog(stack, prefix)
    settings = Settings.model_validate(
        {
            "topic_prefix": prefix,
            "app_id": group,
            "partitions": 2,
            "batch_max": SMALL_BATCH,
            "clock": "watermark",
        }
    )
    worker = asyncio.run(_run_until_applied(settings, stack, last_offsets(published)))
    assert worker.overlaps, "no batch started while another was applied"
    assert all(_disjoint(batches) for batches in worker.overlaps)


def _disjoint(batches: Sequence[frozenset[TopicPartition]]) -> bool:
    return sum(map(len, batches)) == len(frozenset().union(*batches))
