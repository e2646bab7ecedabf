"""The partition benchmark's feed: live rounds cut into per-partition batches with offsets
that continue from round to round, and new ids on every pass over the pool; plan-naming
events in the first pass only."""

import orjson

from bench.partitions import Feed
from bench.steady import PLAN_NAMING, Replay, Template
from bench.throughput import generate


def test_rounds_cover_every_event_once_with_offsets_that_continue() -> None:
    pool = [Template.of(m) for m in generate(300, 20, 1)]
    feed = Feed(Replay(pool), partitions=4)
    rounds = [feed.round(250) for _ in range(4)]  # 1,000 events: more than three passes
    assert all(sum(len(batch) for _t, _p, batch in jobs) == 250 for jobs in rounds)
    by_tp: dict[tuple[str, int], list[int]] = {}
    for jobs in rounds:
        for topic, partition, batch in jobs:
            by_tp.setdefault((topic, partition), []).extend(m.offset for m in batch)
    for offsets in by_tp.values():
        assert offsets == list(range(len(offsets)))
    ids = [orjson.loads(m.value)["id"] for jobs in rounds for _t, _p, batch in jobs for m in batch]
    assert len(set(ids)) == 1000  # each pass over the 300 gets ids of its own


def test_later_passes_leave_out_the_events_that_name_a_plan() -> None:
    pool = [Template.of(m) for m in generate(2000, 20, 1)]
    naming = sum(t.names_plan for t in pool)
    feed = Feed(Replay(pool), partitions=4)
    events = [orjson.loads(m.value) for _t, _p, b in feed.round(2000 + 3 * 1500) for m in b]
    first = [e["type"] for e in events if e["id"].endswith("-r0")]
    later = [e["type"] for e in events if not e["id"].endswith("-r0")]
    assert (len(first), len(later)) == (2000, 3 * 1500)
    assert sum(t in PLAN_NAMING for t in first) == naming > 0  # counted from the payloads
    assert not any(t in PLAN_NAMING for t in later)
    assert len({e["id"] for e in events}) == len(events)
