"""Producer duplicates across batches, judged by the partition's stream time.

The dedup index remembers an id for one horizon of the partition's stream
time from when it was applied, whatever the event's own time: a copy of a
backfilled event two days old, arriving a batch later, is a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from aggregators.clock import Clock
from aggregators.reader import Reader
from streams.processor import RawMessage
from tests.processor.conftest import Rig
from tests.scenarios import event

DAY = 86_400


def message(offset: int, body: dict[str, Any]) -> RawMessage:
    return RawMessage(offset, body["data"]["account_id"].encode(), orjson.dumps(body))


def nps_responses(rig: Rig, window: str) -> float:
    reader = Reader(rig.client(), rig.settings.metric_config(), Clock("watermark"))
    return reader.read().snapshot.sums[window].get("responses_nps", 0.0)


def test_a_copy_of_an_old_event_in_a_later_batch_is_not_counted_again(rig: Rig) -> None:
    now = time.time()
    old = event("survey.answered", now - 2 * DAY, "acme", kind="nps", score=9)
    recent = event("survey.answered", now - 60, "acme", kind="nps", score=3)

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "surveys", [message(0, old), message(1, recent)]) == 1
        assert await rig.process(processor, "surveys", [message(2, old)]) == 2

    asyncio.run(scenario())
    assert nps_responses(rig, "7d") == 2  # the old answer once, the recent one once
    assert nps_responses(rig, "1d") == 1
    assert rig.box.letters == []


@dataclass(frozen=True)
class StoppedWallClock(Clock):
    """The wall clock of a worker that ran at ``at`` (two days ago, before going down)."""

    at: float = 0.0

    def batch_time(self, stream_time: float | None) -> float:
        return self.at


def test_a_worker_catching_up_under_the_wall_clock_keeps_the_ids_it_replays(rig: Rig) -> None:
    """Applied two days ago, then two days down, then the backlog: the index ages with
    the events, so the first event's copy in the backlog is still a duplicate."""
    now = time.time()
    first = event("survey.answered", now - 2 * DAY, "acme", kind="nps", score=9)
    next_ = event("survey.answered", now - 2 * DAY + 60, "acme", kind="nps", score=3)

    async def scenario() -> None:
        before = rig.processor(clock=StoppedWallClock(at=now - 2 * DAY + 1))
        assert await rig.process(before, "surveys", [message(0, first)]) == 0
        processor = rig.processor(clock="wall")
        assert await rig.process(processor, "surveys", [message(1, next_)]) == 1
        assert await rig.process(processor, "surveys", [message(2, first)]) == 2

    asyncio.run(scenario())
    assert nps_responses(rig, "7d") == 2


def test_an_id_is_forgotten_once_stream_time_moves_a_horizon_past_its_batch(rig: Rig) -> None:
    """The documented limit: the index holds one horizon of stream time, no more."""
    now = time.time()
    first = event("survey.answered", now - 3 * DAY, "acme", kind="nps", score=9)
    later = event("survey.answered", now - 3 * DAY + DAY + 120, "acme", kind="nps", score=3)

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "surveys", [message(0, first)]) == 0
        assert await rig.process(processor, "surveys", [message(1, later)]) == 1
        assert await rig.process(processor, "surveys", [message(2, first)]) == 2

    asyncio.run(scenario())
    assert nps_responses(rig, "7d") == 3
