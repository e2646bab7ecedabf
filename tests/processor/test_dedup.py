"""Producer duplicates across batches, judged on arrival (events.md, Duplicate).

The dedup index remembers an id for one horizon of record time (the Kafka
timestamps the producer stamped) from its first copy, whatever the event's own
time and however far the partition's stream time moved: a copy of a backfilled
event two days old, arriving a batch later, is a duplicate; a copy sent more
than a horizon after the first is an event of its own.
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


def message(offset: int, body: dict[str, Any], sent: float | None = None) -> RawMessage:
    key = body["data"]["account_id"].encode()
    return RawMessage(offset, key, orjson.dumps(body), sent)


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


def test_a_copy_is_caught_however_far_stream_time_moved_in_between(rig: Rig) -> None:
    """A backfill's copy sent a minute after its original, with two days of history
    applied between them: stream time moved 2 days (past the horizon), record time 60 s."""
    now = time.time()
    first = event("survey.answered", now - 2 * DAY, "acme", kind="nps", score=9)
    recent = event("survey.answered", now - 60, "acme", kind="nps", score=3)

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "surveys", [message(0, first, now - 120)]) == 0
        assert await rig.process(processor, "surveys", [message(1, recent, now - 90)]) == 1
        assert await rig.process(processor, "surveys", [message(2, first, now - 60)]) == 2

    asyncio.run(scenario())
    assert nps_responses(rig, "7d") == 2


def test_an_id_is_forgotten_a_horizon_of_record_time_after_its_first_copy(rig: Rig) -> None:
    """The documented limit: a copy sent more than the horizon (1 d) after the first is
    applied again, whatever the events' own times."""
    now = time.time()
    first = event("survey.answered", now - 3 * DAY, "acme", kind="nps", score=9)
    other = event("survey.answered", now - 3 * DAY + 120, "acme", kind="nps", score=3)

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "surveys", [message(0, first, now - 2 * DAY)]) == 0
        late_send = now - 2 * DAY + DAY + 60
        assert await rig.process(processor, "surveys", [message(1, other, late_send)]) == 1
        assert await rig.process(processor, "surveys", [message(2, first, late_send + 1)]) == 2

    asyncio.run(scenario())
    assert nps_responses(rig, "7d") == 3


def test_a_copy_of_a_too_late_event_is_a_duplicate_not_late_again(rig: Rig) -> None:
    """A state-free event older than every bucket is dead-lettered once; its copy (same
    batch or a later one) counts as a duplicate."""
    now = time.time()
    recent = event("survey.answered", now - 60, "acme", kind="nps", score=3)
    ancient = event("survey.answered", now - 90 * DAY, "acme", kind="nps", score=9)

    async def scenario() -> None:
        processor = rig.processor()
        batch = [message(0, recent, now - 30), message(1, ancient, now - 20)]
        assert await rig.process(processor, "surveys", [*batch, message(2, ancient, now - 19)]) == 2
        assert await rig.process(processor, "surveys", [message(3, ancient, now - 10)]) == 3

    asyncio.run(scenario())
    reasons = [letter.reason for _topic, _partition, letter in rig.box.letters]
    assert reasons == ["too_late"]
    assert nps_responses(rig, "7d") == 1
