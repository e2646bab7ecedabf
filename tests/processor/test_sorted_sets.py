"""The apply script writes small sorted sets as skiplists, and leaves nothing of how.

A listpack sorted set parses every fractional score it passes on each insert;
the script turns the sets it writes into skiplists with a long member added
before and removed after (see ``aggregators.store._Script.skiplist``).
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

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
