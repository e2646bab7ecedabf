"""The apply script writes small sorted sets as skiplists, and leaves nothing of how.

A listpack sorted set parses every fractional score it passes on each insert;
the script turns the sets it writes into skiplists with a long member added
before and removed after (see ``aggregators.store._Script.skiplist``).
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

import msgspec

from aggregators import keys
from tests.processor.conftest import Rig
from tests.processor.test_processor import T0, opened


def test_small_sorted_sets_are_skiplists_without_the_long_member(rig: Rig) -> None:
    began = time.time()

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "tickets", opened(5)) == 4
        assert await rig.process(processor, "tickets", opened(3, "beta", start=5)) == 7

    asyncio.run(scenario())
    client = rig.client()
    tag = keys.partition_tag(rig.settings.topic("tickets"), 0)
    seen = keys.seen(tag)
    sorted_sets = [k for k in client.scan_iter(match=f"cs:{tag}:*") if client.type(k) == b"zset"]
    assert seen.encode() in sorted_sets
    for key in sorted_sets:
        assert client.object("encoding", key) == b"skiplist", key
        assert all(len(member) < 72 for member in client.zrange(key, 0, -1)), key
    pairs = cast(list[tuple[bytes, float]], client.zrange(seen, 0, -1, withscores=True))
    scores = [score for _member, score in pairs]
    # every id is scored by its record's arrival: here no broker stamped one, so the
    # time it was read, never the events' own times (T0 on)
    assert len(scores) == 8
    assert all(began <= score <= time.time() for score in scores)
    assert all(abs(score - T0) > 60 for score in scores)


def test_record_timestamps_are_stored_as_the_exact_scores(rig: Rig) -> None:
    """Scores are sent as text (``<ms>e-3`` for whole milliseconds): Redis must read
    back the very doubles the records carried, a millisecond stamp or any other."""
    base_ms = int(time.time() * 1000)
    stamps = [base_ms / 1000, (base_ms + 1) / 1000, (base_ms + 7) / 1000, time.time() + 1e-6 / 3]
    messages = [
        msgspec.structs.replace(m, timestamp=stamp)
        for m, stamp in zip(opened(4), stamps, strict=True)
    ]
    asyncio.run(rig.process(rig.processor(), "tickets", messages))
    seen = keys.seen(keys.partition_tag(rig.settings.topic("tickets"), 0))
    pairs = cast(list[tuple[bytes, float]], rig.client().zrange(seen, 0, -1, withscores=True))
    assert sorted(score for _member, score in pairs) == sorted(stamps)
